package signs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompare(t *testing.T) {
	at := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	enforcing := Record{BootID: "b1", Kernel: "6.18", Backend: "bpf", Pinned: true, SelfProtect: true, Updated: at}
	for _, tc := range []struct {
		name string
		prev Record
		now  Now
		want string // the sign's kind, "" for none
	}{
		{"rebooted without bpf in lsm=", enforcing, Now{BootID: "b2", Kernel: "6.18", Reason: "bpf is not in the LSM list"}, BootedWithoutBPF},
		{"another kernel, without BPF LSM", enforcing, Now{BootID: "b2", Kernel: "6.1", Reason: "no BTF"}, BootedWithoutBPF},
		{"a plain reboot: the pins are gone with the boot", enforcing, Now{BootID: "b2", Kernel: "6.18", BPFLSM: true}, ""},
		{"same boot, pins gone without a stop", enforcing, Now{BootID: "b1", Kernel: "6.18", BPFLSM: true}, ProgramsRemoved},
		{"same boot, pins still there", enforcing, Now{BootID: "b1", Kernel: "6.18", BPFLSM: true, Pinned: true}, ""},
		{"unloaded by the authorized stop", func() Record { r := enforcing; r.Unloaded = true; return r }(), Now{BootID: "b2", Reason: "off"}, ""},
		{"not pinned: nothing promised without the agent", func() Record { r := enforcing; r.Pinned = false; return r }(), Now{BootID: "b1", BPFLSM: true}, ""},
		{"the fanotify backend promised nothing", Record{BootID: "b1", Backend: "fanotify"}, Now{BootID: "b2", Reason: "off"}, ""},
		{"no record", Record{}, Now{BootID: "b2", Reason: "off"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compare(tc.prev, tc.now, at)
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("signs %+v, want none", got)
			case tc.want != "" && (len(got) != 1 || got[0].What != tc.want):
				t.Errorf("signs %+v, want one %s", got, tc.want)
			case tc.want != "" && (!strings.Contains(got[0].Detail, "b1") || !got[0].Seen.Equal(at)):
				t.Errorf("the sign does not say which boot enforced, or when it was seen: %+v", got[0])
			}
		})
	}
}

func TestRecordRoundTripAndUnload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "enforcement.json")
	if _, err := Read(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing record: %v, want fs.ErrNotExist", err)
	}
	if err := MarkUnloaded(path, time.Now()); err != nil {
		t.Fatalf("unload with no record: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unload with no record made one: %v", err)
	}
	want := Record{BootID: "b1", Kernel: "6.18", Backend: "bpf", Pinned: true, SelfProtect: true, Updated: time.Now().UTC().Round(time.Second)}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(path))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the record's directory: %v %v, want mode 0700", fi.Mode(), err)
	}
	got, err := Read(path)
	if err != nil || got != want {
		t.Fatalf("read %+v %v, want %+v", got, err, want)
	}
	if err := MarkUnloaded(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(path); err != nil || !got.Unloaded || got.BootID != "b1" {
		t.Fatalf("after the unload: %+v %v", got, err)
	}
	// Nothing but the record is left in its directory.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files beside the record: %v", entries)
	}
	if err := os.WriteFile(path, []byte("{torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a damaged record read as %v, want an error that is not a missing record", err)
	}
}

func TestModulesLoaded(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "modules")
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	before, err := Modules(write("overlay 212992 0 - Live 0x0000000000000000\nvirtio_net 77824 0 - Live 0x0000000000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := Modules(write("rootkit 16384 0 - Live 0x0000000000000000 (OE)\noverlay 212992 0 - Live 0x0000000000000000\nnf_tables 376832 0 - Live 0x0000000000000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Loaded(before, after); !slices.Equal(got, []string{"nf_tables", "rootkit"}) {
		t.Errorf("loaded %v, want [nf_tables rootkit] (an unloaded module is not a sign)", got)
	}
	if _, err := Modules(filepath.Join(dir, "none")); err == nil {
		t.Error("a missing modules file read without error")
	}
	if real, err := Modules("/proc/modules"); err == nil && len(Loaded(real, real)) != 0 {
		t.Error("the same list compared with itself gave loaded modules")
	}
}
