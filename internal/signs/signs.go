// Package signs keeps a record, across reboots, of what a machine's agent
// enforced with, and reads from it and from the running kernel the signs
// that root got around the enforcement where the agent could not stop it:
// a boot without BPF LSM, pinned programs gone with no authorized stop,
// a kernel module loaded while the agent ran. None of these can be
// prevented by the programs themselves (the README's threat model); they
// are reported, so that they are not silent.
package signs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Kinds of sign.
const (
	// BootedWithoutBPF: the last agent enforced with pinned BPF LSM
	// programs and was never stopped with an unload, and the kernel now
	// running runs no BPF LSM programs (booted without bpf in lsm=, or
	// another kernel).
	BootedWithoutBPF = "booted-without-bpf-lsm"
	// ProgramsRemoved: in the same boot, the pinned programs the last
	// agent left enforcing are gone though no authorized stop removed
	// them.
	ProgramsRemoved = "programs-removed"
	// ModuleLoaded: a kernel module was loaded while the agent ran; a
	// module can detach the programs or change kernel memory.
	ModuleLoaded = "module-loaded"
)

// Sign is one thing found that the enforcement may have been got around.
type Sign struct {
	What   string    `json:"what"`
	Detail string    `json:"detail"`
	Seen   time.Time `json:"seen"`
}

// Record is what the agent enforced with, as it last wrote it.
type Record struct {
	BootID  string `json:"bootID"`
	Kernel  string `json:"kernel"`
	Backend string `json:"backend"`
	// Pinned is true when the programs were pinned, to go on enforcing
	// without the agent.
	Pinned      bool `json:"pinned"`
	SelfProtect bool `json:"selfProtect"`
	// Unloaded is true once an authorized stop removed the programs: from
	// then on nothing is expected to enforce.
	Unloaded bool      `json:"unloaded"`
	Updated  time.Time `json:"updated"`
}

// Now is what a starting agent finds.
type Now struct {
	BootID string
	Kernel string
	// BPFLSM is true when this kernel runs BPF LSM programs; Reason says
	// why not.
	BPFLSM bool
	Reason string
	// Pinned is true when programs were pinned before this agent loaded
	// any.
	Pinned bool
}

// Expects reports whether prev promised enforcement that should still be
// in force: pinned BPF programs never unloaded. Only then does Compare
// need to know whether this kernel runs BPF LSM programs.
func Expects(prev Record) bool {
	return prev.Backend == "bpf" && prev.Pinned && !prev.Unloaded
}

// Compare returns the signs that what prev promised was got around.
func Compare(prev Record, now Now, at time.Time) []Sign {
	if !Expects(prev) {
		return nil
	}
	since := fmt.Sprintf("boot %s, kernel %s, recorded %s", prev.BootID, prev.Kernel, prev.Updated.UTC().Format(time.RFC3339))
	switch {
	case !now.BPFLSM:
		return []Sign{{What: BootedWithoutBPF, Seen: at, Detail: fmt.Sprintf(
			"the agent enforced with pinned BPF LSM programs (%s) and was not stopped with drmfilter stop --unload, but this kernel (%s, boot %s) runs no BPF LSM programs: %s",
			since, now.Kernel, now.BootID, now.Reason)}}
	case prev.BootID != "" && prev.BootID == now.BootID && !now.Pinned:
		return []Sign{{What: ProgramsRemoved, Seen: at, Detail: fmt.Sprintf(
			"the programs pinned in this boot (%s) are gone, though no authorized stop removed them: something detached them while the agent was not running",
			since)}}
	}
	return nil
}

// Read reads the record at path; a missing record is an error matching
// fs.ErrNotExist.
func Read(path string) (Record, error) {
	var r Record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("read the enforcement record: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("enforcement record %s: %w", path, err)
	}
	return r, nil
}

// Write replaces the record at path, atomically: a crash leaves the old
// record or the new one, never a torn one. Its directory is made root's
// alone if missing.
func Write(path string, r Record) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("enforcement record: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("enforcement record: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("enforcement record: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("enforcement record %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// MarkUnloaded records at path that the programs were unloaded by an
// authorized stop; a missing record is left missing.
func MarkUnloaded(path string, at time.Time) error {
	r, err := Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r.Unloaded, r.Updated = true, at
	return Write(path, r)
}

// BootID reads the kernel's boot ID (a new random one every boot).
func BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Modules reads the names of the loaded kernel modules from a
// /proc/modules file.
func Modules(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if name, _, ok := strings.Cut(sc.Text(), " "); ok && name != "" {
			out[name] = true
		}
	}
	return out, nil
}

// Loaded returns the names in after that are not in before, sorted.
func Loaded(before, after map[string]bool) []string {
	var out []string
	for m := range after {
		if !before[m] {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}
