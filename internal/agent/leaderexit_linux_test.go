package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Issue #17 case 17: with its leader exited (pthread_exit in main), a
// process opening or executing a protected file from another thread is
// decided by the policy as itself, not let through by failureMode: open
// as a failed process lookup.
func TestLeaderExitedThreadIsDecided(t *testing.T) { forBackends(t, testLeaderExitedThreadIsDecided) }

func testLeaderExitedThreadIsDecided(t *testing.T, backend string) {
	h := startAgentOn(t, backend, func(fs string) string { return policyFor(fs, "") }, nil)
	bin := testutil.BuildC(t, "leaderexit", filepath.Join("..", "proc", "testdata", "leaderexit.c"))
	data, err := os.ReadFile(realPath("true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path("secret/true"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "/", bin, "open", h.path("public/readme.txt"))
	mustAllow(t, out, err, "a second thread reading an unprotected file")
	if out != "public\n" {
		t.Errorf("helper printed %q", out)
	}
	out, err = run(t, "/", bin, "open", h.path("secret/plan.txt"))
	mustDeny(t, out, err, "a second thread opening a protected file, the leader exited")
	out, err = run(t, "/", bin, "exec", h.path("secret/true"))
	mustDeny(t, out, err, "a second thread executing a protected file, the leader exited")

	h.stop() // flush the audit log
	denied := map[string]bool{}
	for _, r := range h.audit.records(t) {
		switch r.Decision {
		case "failure":
			t.Errorf("failure record: %+v", r)
		case "deny":
			if r.Exe != bin || r.UID != uint32(os.Getuid()) || r.PID == 0 {
				t.Errorf("deny record names another process: %+v", r)
			}
			denied[r.Operation+" "+r.Rule+" "+r.Path] = true
		}
	}
	for _, want := range []string{
		"open others-may-not-open " + h.path("secret/plan.txt"),
		"exec no-exec " + h.path("secret/true"),
	} {
		if !denied[want] {
			t.Errorf("no deny record for %s in %+v", want, h.audit.records(t))
		}
	}
}
