package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drmfilter/drmfilter/internal/config"
)

// TestAdminRequestsNeedTheKey: with admin keys configured, root on the
// admin socket cannot stop the agent or change its policies without a
// signature by one of them, nor replay one; with the key it can.
func TestAdminRequestsNeedTheKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	keys := filepath.Join(dir, "admin.pub")
	if err := os.WriteFile(keys, ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, func(c *config.Config) {
		c.AdminSocket, c.AdminKeys = sock, []string{keys}
	})
	ln, err := h.a.ListenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.a.ServeAdminOn(ctx, ln) }()
	ask := func(req AdminRequest, s ssh.Signer) error {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return Administer(c, sock, req, s)
	}
	if err := ask(AdminRequest{Op: AdminStop}, nil); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned stop: %v, want a refusal", err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewSignerFromKey(other)
	if err := ask(AdminRequest{Op: AdminStop}, wrong); err == nil {
		t.Fatal("a stop signed by another key was accepted")
	}
	// A signature over one request does not authorize another.
	if err := ask(AdminRequest{Op: AdminStop}, replaying{signer, AdminRequest{Op: AdminReload}}); err == nil {
		t.Fatal("a stop carrying a reload's signature was accepted")
	}
	if !h.a.ready.Load() {
		t.Fatal("the agent stopped after refused requests")
	}
	if err := ask(AdminRequest{Op: AdminReload}, signer); err != nil {
		t.Fatalf("signed reload: %v", err)
	}
	if err := ask(AdminRequest{Op: AdminStop}, signer); err != nil {
		t.Fatalf("signed stop: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for h.a.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the agent still runs after a signed stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replaying signs the bytes of another request than the one sent.
type replaying struct {
	ssh.Signer
	other AdminRequest
}

func (r replaying) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	// The challenge is in data; the signature covers the other request.
	lines := strings.Split(string(data), "\n")
	var ch adminChallenge
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "node="):
			ch.Node = strings.TrimPrefix(l, "node=")
		case strings.HasPrefix(l, "challenge="):
			ch.Challenge = strings.TrimPrefix(l, "challenge=")
		case strings.HasPrefix(l, "pid="):
			_, _ = fmt.Sscan(strings.TrimPrefix(l, "pid="), &ch.PID)
		}
	}
	return r.Signer.Sign(rand, r.other.SignedBytes(ch))
}

// TestAdminPolicyAndConfigChanges: the policy directory and the
// configuration changed through the admin socket (as `drmfilter policy
// apply --replace` and `config apply` do): a set that loads replaces the
// directory's content and is in force; one that does not changes nothing.
func TestAdminPolicyAndConfigChanges(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "policies")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("mode: enforce\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	var fsPath string
	h := startAgent(t, func(fs string) string {
		fsPath = fs
		if err := os.WriteFile(filepath.Join(pdir, "old.yaml"), []byte(policyFor(fs, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		return policyFor(fs, "")
	}, func(c *config.Config) {
		c.AdminSocket, c.Policies = sock, []string{pdir}
	}, func(o *Options) { o.ConfigFile = cfgFile })
	ln, err := h.a.ListenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.a.ServeAdminOn(ctx, ln) }()
	ask := func(req AdminRequest) error {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return Administer(c, sock, req, nil)
	}
	names := func() []string {
		es, _ := os.ReadDir(pdir)
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	out, err := run(t, "/", "cat", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "cat before the change")

	withCat := policyFor(fsPath, fmt.Sprintf(`    - name: cat-may-open
      operations: [open]
      subjects: {executables: [%q]}
      effect: allow
`, realPath("cat")))
	// A set with a broken file: nothing changes.
	err = ask(AdminRequest{Op: AdminPolicySet, Files: []AdminFile{{Name: "new.yaml", Data: []byte(withCat)}, {Name: "bad.yaml", Data: []byte("kind: [")}}})
	if err == nil {
		t.Fatal("a policy set that does not load was taken")
	}
	if got := names(); len(got) != 1 || got[0] != "old.yaml" {
		t.Errorf("after a refused set the directory holds %v, want [old.yaml]", got)
	}
	if err := ask(AdminRequest{Op: AdminPolicySet, Files: []AdminFile{{Name: "new.yaml", Data: []byte(withCat)}}}); err != nil {
		t.Fatalf("policy set: %v", err)
	}
	if got := names(); len(got) != 1 || got[0] != "new.yaml" {
		t.Errorf("after the set the directory holds %v, want [new.yaml]", got)
	}
	out, err = run(t, "/", "cat", h.path("secret/plan.txt"))
	mustAllow(t, out, err, "cat after the set that allows it")
	if err := ask(AdminRequest{Op: AdminPolicyRemove, Name: "new.yaml"}); err == nil {
		t.Error("removing the last policy (a set that does not load) was taken")
	}
	if err := ask(AdminRequest{Op: AdminPolicyPut, Name: "../escape.yaml", Data: []byte(withCat)}); err == nil {
		t.Error("a policy name with a path was taken")
	}

	if err := ask(AdminRequest{Op: AdminConfigPut, Data: []byte("mode: sideways\n")}); err == nil {
		t.Error("a configuration that does not load was taken")
	}
	if err := ask(AdminRequest{Op: AdminConfigPut, Data: []byte("mode: audit\n")}); err != nil {
		t.Fatalf("config put: %v", err)
	}
	if b, _ := os.ReadFile(cfgFile); string(b) != "mode: audit\n" {
		t.Errorf("the configuration file holds %q", b)
	}
}
