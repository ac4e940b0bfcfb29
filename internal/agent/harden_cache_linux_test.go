package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// hcUser is the unprivileged user of these tests (nobody).
const hcUser = 65534

// hcRun runs name as hcUser (in cgroup dir when not empty, through
// clone(CLONE_INTO_CGROUP)), with a timeout; the process is killed by the
// context if it hangs.
func hcRun(t *testing.T, cgroup, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: hcUser, Gid: hcUser, NoSetGroups: true}}
	if cgroup != "" {
		d, err := os.Open(cgroup)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(d.Fd())
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v hung: %s", name, args, out)
	}
	return string(out), err
}

// TestHashCacheNotPoisonedThroughASharedMapping (issue #17, case 11): only
// head, by its SHA-256, may read the secret. A copy of head that an
// unprivileged user owns reads it once, and its hash is known; the user
// then changes the copy through a shared writable mapping, which on tmpfs
// leaves its change time, size and inode as they were. The changed copy
// must not read the secret on the strength of the hash its old content
// had: a file a user can change is hashed again at each decision.
func TestHashCacheNotPoisonedThroughASharedMapping(t *testing.T) {
	head := realPath("head")
	h := startAgent(t, func(fs string) string {
		return policyByHash(fs, fileSHA256(t, head))
	}, func(c *config.Config) {
		// Neither a slow hash on a loaded machine nor the failure mode
		// may decide here.
		c.Deadline, c.FailureMode = time.Minute, config.FailClosed
	})
	// The user's own tmpfs, not the marked one.
	bin := testutil.MountTmpfs(t)
	testutil.OpenToAll(t, filepath.Dir(bin))
	if err := os.Chown(bin, hcUser, hcUser); err != nil {
		t.Fatal(err)
	}
	copyHead := filepath.Join(bin, "head")
	b, err := os.ReadFile(head)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyHead, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(copyHead, hcUser, hcUser); err != nil {
		t.Fatal(err)
	}
	var before syscall.Stat_t
	if err := syscall.Stat(copyHead, &before); err != nil {
		t.Fatal(err)
	}

	out, err := run(t, "/", copyHead, h.path("secret/plan.txt"))
	mustAllow(t, out, err, "the user's copy of head, as head")
	if !strings.Contains(out, "the plan") {
		t.Fatalf("the copy of head did not read the secret: %q", out)
	}

	testutil.WriteShared(t, copyHead, testutil.ELFUnusedByte(t, copyHead), hcUser, hcUser)
	if fileSHA256(t, copyHead) == fileSHA256(t, head) {
		t.Fatal("the shared-mapping write changed nothing")
	}
	var after syscall.Stat_t
	if err := syscall.Stat(copyHead, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ctim != before.Ctim || after.Ino != before.Ino || after.Size != before.Size {
		t.Logf("the kernel gave the changed file a new identity (ctime %v, was %v): the cache was not at risk here", after.Ctim, before.Ctim)
	}

	out, err = run(t, "/", copyHead, h.path("secret/plan.txt"))
	if strings.Contains(out, "the plan") {
		t.Errorf("the changed copy of head read the secret with the old content's hash: %q", out)
	}
	mustDeny(t, out, err, "the changed copy of head")
	// The real head still may.
	out, err = run(t, "/", head, h.path("secret/plan.txt"))
	mustAllow(t, out, err, "head")
	h.stop()
	denied := false
	for _, r := range h.audit.records(t) {
		denied = denied || (r.Decision == "deny" && r.Exe == copyHead && r.Rule == "others")
	}
	if !denied {
		t.Errorf("no deny record for the changed copy: %+v", h.audit.records(t))
	}
}

// TestContainerIDFromADelegatedCgroupIsNotBelieved (issue #17, case 12):
// only container <id> may read the secret. A process root put in
// docker-<id>.scope (as the engine does) reads it. The unprivileged user
// a cgroup subtree is delegated to (user@65534.service, chowned to it as
// systemd's Delegate= does) creates a docker-<id>.scope of its own there,
// with the same ID, moves itself in and tries: it is a host process, and
// denied. Both run as that user: only the cgroup's owner differs.
func TestContainerIDFromADelegatedCgroupIsNotBelieved(t *testing.T) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(b)
	top := "drmfilter-agent-" + strconv.Itoa(os.Getpid()) + ".slice"
	real := testutil.Cgroup(t, top+"/system.slice/docker-"+id+".scope", 0)
	deleg := testutil.Cgroup(t, top+"/user.slice/user@65534.service", 0)
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(deleg, f), hcUser, hcUser); err != nil {
			t.Fatal(err)
		}
	}
	spoof := testutil.Cgroup(t, top+"/user.slice/user@65534.service/docker-"+id+".scope", hcUser)

	h := startAgent(t, func(fs string) string {
		return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-container}
spec:
  files: {paths: ["%s/secret/**"]}
  rules:
    - {name: the-container, operations: [open], subjects: {container: {runtimes: [docker], ids: ["%s"]}}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`, fs, id)
	}, nil)
	testutil.OpenToAll(t, filepath.Dir(h.fs))
	secret := h.path("secret/plan.txt")

	out, err := hcRun(t, real, "cat", secret)
	mustAllow(t, out, err, "cat in root's docker-<id>.scope")
	out, err = hcRun(t, deleg, "sh", "-c", "echo $$ > "+filepath.Join(spoof, "cgroup.procs")+" && exec cat "+secret)
	if strings.Contains(out, "the plan") {
		t.Errorf("cat in the user's own docker-<id>.scope read the secret: %q", out)
	}
	mustDeny(t, out, err, "cat in the user's own docker-<id>.scope")
	h.stop()
	host := 0
	for _, r := range h.audit.records(t) {
		if r.Decision == "deny" && r.Rule == "others" {
			host++
			if r.ContainerID != "" {
				t.Errorf("the spoofing process was recorded in a container: %+v", r)
			}
			if !strings.Contains(r.Reason, "container not believed: ") || !strings.Contains(r.Reason, deleg+" is owned by uid 65534, not root") {
				t.Errorf("the deny record does not say why the container was not believed: %q", r.Reason)
			}
		}
	}
	if host != 1 {
		t.Errorf("%d deny records, want 1: %+v", host, h.audit.records(t))
	}
}
