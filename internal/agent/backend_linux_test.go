package agent

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/environ"
)

// newWithBackend makes (but does not run) an agent on a policy, with the
// backend asked for and a stand-in for the kernel's answer to "can BPF LSM
// programs run here".
func newWithBackend(t *testing.T, policyText, backend string, probe bpflsm.Availability) (*Agent, error) {
	t.Helper()
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(pol, []byte(policyText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Policies = []string{pol}
	cfg.Audit.File = ""
	cfg.StatusSocket = ""
	cfg.Backend = backend
	cfg.BPF.PinPath, cfg.BPF.SelfProtect = "", false
	env := environ.Report{Hypervisor: "kvm", Cloud: "none", Container: "none"}
	return New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(testLogOut(), nil)), Env: &env,
		AuditSinks: []audit.Sink{audit.NewStreamSink(&syncBuffer{})}, probe: func() bpflsm.Availability { return probe }})
}

const backendPolicy = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: guard}
spec:
  files: {paths: ["/srv/guarded/**"]}
  rules:
    - name: nobody-deletes
      operations: [%s]
      effect: deny
`

func TestBackendSelection(t *testing.T) {
	yes := bpflsm.Availability{OK: true, Reason: "probe said yes", LSMs: []string{"bpf"}, BTF: true}
	no := bpflsm.Availability{Reason: "probe said no", Fix: "boot with lsm=...,bpf", LSMs: []string{"capability"}}
	hashPolicy := `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-hash}
spec:
  files: {paths: ["/srv/guarded/**"]}
  rules:
    - name: only-this-build
      subjects: {executableHashes: ["` + strings.Repeat("ab", 32) + `"]}
      operations: [open]
      effect: allow
`
	for _, c := range []struct {
		name, policy, backend string
		probe                 bpflsm.Availability
		want                  string // backend chosen; "" = New fails
		reason, err           string // substrings
	}{
		{"auto takes bpf where it runs", strings.Replace(backendPolicy, "%s", "open", 1), "auto", yes, "bpf", "auto: probe said yes", ""},
		{"auto falls back with the kernel's reason", strings.Replace(backendPolicy, "%s", "open", 1), "auto", no, "fanotify", "not available: probe said no", ""},
		{"auto falls back when the policies need what bpf lacks", hashPolicy, "auto", yes, "fanotify", "executableHashes", ""},
		{"fanotify when asked, whatever the kernel", strings.Replace(backendPolicy, "%s", "open", 1), "fanotify", yes, "fanotify", "configured", ""},
		{"bpf asked for but refused: an error with the fix", strings.Replace(backendPolicy, "%s", "open", 1), "bpf", no, "", "", "boot with lsm="},
		{"bpf asked for, policy it cannot decide: an error naming it", hashPolicy, "bpf", yes, "", "", "executableHashes"},
		{"delete on fanotify: an error naming rule, operation and backend", strings.Replace(backendPolicy, "%s", "delete", 1), "auto", no, "", "", "nobody-deletes"},
		{"delete with bpf available: bpf", strings.Replace(backendPolicy, "%s", "delete", 1), "auto", yes, "bpf", "auto:", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := newWithBackend(t, c.policy, c.backend, c.probe)
			if c.want == "" {
				if err == nil {
					t.Fatalf("New succeeded with backend %s (%s); want an error containing %q", a.backend, a.backendReason, c.err)
				}
				if !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %q does not contain %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := a.Status()
			if st.Backend != c.want || !strings.Contains(st.BackendReason, c.reason) {
				t.Fatalf("status says backend %q (%q); want %q with a reason containing %q", st.Backend, st.BackendReason, c.want, c.reason)
			}
			if a.Settings()["backend"] != c.want {
				t.Errorf("settings say backend %q, want %q", a.Settings()["backend"], c.want)
			}
		})
	}
}

// The delete error names where the rule is, the operation and the backend,
// and is a policy error (the agent's exit code for a bad policy).
func TestFanotifyRejectsDeleteRules(t *testing.T) {
	_, err := newWithBackend(t, strings.Replace(backendPolicy, "%s", "delete", 1), "fanotify", bpflsm.Availability{})
	if err == nil {
		t.Fatal("a delete rule loaded on the fanotify backend")
	}
	if !errors.Is(err, ErrPolicy) {
		t.Errorf("error %v is not a policy error", err)
	}
	for _, want := range []string{"policy.yaml:", "nobody-deletes", "delete", "fanotify"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// On this machine's real kernel, auto says why it chose what it chose.
func TestAutoBackendOnThisKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("probing BPF LSM needs root")
	}
	real := bpflsm.Probe()
	a, err := newWithBackend(t, strings.Replace(backendPolicy, "%s", "open", 1), "auto", real)
	if err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	t.Logf("backend %s: %s", st.Backend, st.BackendReason)
	want := "fanotify"
	if real.OK {
		want = "bpf"
	}
	if st.Backend != want || !strings.Contains(st.BackendReason, real.Reason) {
		t.Fatalf("backend %q (%q), want %q with the probe's reason %q", st.Backend, st.BackendReason, want, real.Reason)
	}
}
