package agent

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/signs"
)

// TestSignsAtStart: an agent that starts where the last one left pinned
// programs enforcing reports, in status, the audit log and metrics, that
// they were got around where the programs could not refuse it: the
// machine booted without BPF LSM, or in the same boot the programs went
// with no authorized stop. An unload by the authorized stop, or no
// record, is no sign. (Issue 13: what the agent reports when it finds
// such a sign.)
func TestSignsAtStart(t *testing.T) {
	boot := signs.BootID()
	if boot == "" {
		t.Fatal("no boot ID in /proc/sys/kernel/random/boot_id")
	}
	enforcing := signs.Record{BootID: boot, Kernel: kernelRelease(), Backend: config.BackendBPF, Pinned: true, SelfProtect: true, Updated: time.Now().UTC()}
	otherBoot := enforcing
	otherBoot.BootID = "00000000-0000-0000-0000-000000000000"
	unloaded := otherBoot
	unloaded.Unloaded = true
	noBPF := bpflsm.Availability{Reason: "bpf is not in the active LSM list"}
	for _, tc := range []struct {
		name   string
		record *signs.Record
		probe  bpflsm.Availability
		want   string
	}{
		{"booted without BPF LSM", &otherBoot, noBPF, signs.BootedWithoutBPF},
		{"programs gone in the same boot", &enforcing, bpflsm.Availability{OK: true}, signs.ProgramsRemoved},
		{"unloaded by the authorized stop", &unloaded, noBPF, ""},
		{"no record", nil, noBPF, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			record := filepath.Join(dir, "state", "enforcement.json")
			if tc.record != nil {
				if err := signs.Write(record, *tc.record); err != nil {
					t.Fatal(err)
				}
			}
			h := startAgentOn(t, config.BackendFanotify, func(fs string) string { return policyFor(fs, "") },
				func(c *config.Config) {
					c.BPF.RecordFile = record
					c.BPF.PinPath = filepath.Join(dir, "bpffs", "drmfilter") // nothing pinned there
				}, func(o *Options) { o.probe = func() bpflsm.Availability { return tc.probe } })
			got := h.a.Status().Protection.Signs
			metric := h.a.stats.signs.Load()
			h.stop()
			var records []audit.Record
			for _, r := range h.audit.records(t) {
				if r.Decision == audit.DecisionSign {
					records = append(records, r)
				}
			}
			if tc.want == "" {
				if len(got) != 0 || len(records) != 0 || metric != 0 {
					t.Errorf("signs %+v, records %+v, metric %d: want none", got, records, metric)
				}
			} else {
				if len(got) != 1 || got[0].What != tc.want {
					t.Fatalf("status signs %+v, want one %s", got, tc.want)
				}
				if len(records) != 1 || records[0].Operation != audit.OpTamper || !strings.HasPrefix(records[0].Reason, tc.want+": ") {
					t.Errorf("audit records %+v, want one sign record of operation tamper for %s", records, tc.want)
				}
				if metric != 1 {
					t.Errorf("drmfilter_tamper_signs_total %d, want 1", metric)
				}
			}
			// The fanotify backend promises nothing without the agent: it
			// leaves the record as it was (a sign is reported again at
			// each start until an agent enforces with the programs).
			after, err := signs.Read(record)
			switch {
			case tc.record == nil && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("the fanotify backend wrote a record: %+v %v", after, err)
			case tc.record != nil && (err != nil || after != *tc.record):
				t.Errorf("the record changed to %+v %v, want %+v", after, err, *tc.record)
			}
		})
	}
}

// TestModulesLoadedWhileRunningAreReported: a kernel module loaded while
// the agent runs is a sign (status, audit, metrics); an unloaded one is
// not. The list is a copy of /proc/modules the test changes.
func TestModulesLoadedWhileRunningAreReported(t *testing.T) {
	h := startAgentOn(t, config.BackendFanotify, func(fs string) string { return policyFor(fs, "") }, nil)
	list := filepath.Join(t.TempDir(), "modules")
	real := []byte("overlay 212992 0 - Live 0x0000000000000000\nvirtio_net 77824 0 - Live 0x0000000000000000\n")
	if err := os.WriteFile(list, real, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.a.watchModules(ctx, list) }()
	defer func() { cancel(); <-done }()
	time.Sleep(100 * time.Millisecond) // the watcher has read the list
	// One loaded, one unloaded.
	if err := os.WriteFile(list, []byte("drmfilter_test_rootkit 16384 0 - Live 0x0000000000000000 (OE)\noverlay 212992 0 - Live 0x0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for len(h.a.Status().Protection.Signs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the loaded module was not reported within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := h.a.Status().Protection.Signs
	if len(got) != 1 || got[0].What != signs.ModuleLoaded || !strings.Contains(got[0].Detail, "drmfilter_test_rootkit") {
		t.Errorf("signs %+v, want one module-loaded naming drmfilter_test_rootkit", got)
	}
	cancel()
	<-done
	h.stop()
	n := 0
	for _, r := range h.audit.records(t) {
		if r.Decision == audit.DecisionSign && strings.Contains(r.Reason, "drmfilter_test_rootkit") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d sign records name the module, want 1", n)
	}
}

// TestLockKernelOnFanotifyIsReported: bpf.lockKernel needs the bpf
// backend's programs; on fanotify the agent says it is not in force
// (status warnings) instead of letting it look set.
func TestLockKernelOnFanotifyIsReported(t *testing.T) {
	h := startAgentOn(t, config.BackendFanotify, func(fs string) string { return policyFor(fs, "") },
		func(c *config.Config) { c.BPF.LockKernel = true })
	p := h.a.Status().Protection
	if p.KernelLocked || !slices.Contains(p.Warnings, lockKernelIgnored) {
		t.Errorf("protection %+v: want kernelLocked false and the warning %q", p, lockKernelIgnored)
	}
}
