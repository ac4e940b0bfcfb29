package agent

// The agent's own files under the bpf backend's self-protection: its
// executable, configuration, policies, admin keys, audit log and the
// directories of its sockets are sealed (bpflsm.Seal), so that no other
// process, root included, changes what the agent is, reads as policy or
// writes as record. The agent itself (exempt) writes them, and changes
// policies only on a signed request (the admin socket's policy
// operations).

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
)

// resealEvery bounds how long a file the agent made (a rotated audit
// log) stays unsealed: its directory is sealed at once (no other process
// replaces or removes it), its content from the next look.
const resealEvery = 5 * time.Second

// claimPinned makes this process the agent that pinned programs guard,
// before anything opens the agent's files: they keep them from every
// other process.
func (a *Agent) claimPinned() error {
	if a.backend != config.BackendBPF || a.cfg.BPF.PinPath == "" || !bpflsm.Pinned(a.cfg.BPF.PinPath) {
		return nil
	}
	err := bpflsm.ClaimPinned(a.cfg.BPF.PinPath)
	if err == nil || !a.cfg.BPF.TakeOverRunning {
		return err
	}
	// Another agent runs them (and this process, a new executable, may
	// not even read them): it is asked to hand them over.
	var signer ssh.Signer
	if k := a.cfg.BPF.HandoverKey; k != "" {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("bpf.handoverKey: %w", err)
		}
		if signer, err = ssh.ParsePrivateKey(b); err != nil {
			return fmt.Errorf("bpf.handoverKey %s: %w", k, err)
		}
	}
	a.log.Info("the pinned programs are another agent's; asking it to hand them over", "adminSocket", a.cfg.AdminSocket, "claim", err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if herr := Administer(ctx, a.cfg.AdminSocket, AdminRequest{Op: AdminHandover}, signer); herr != nil {
		if errors.Is(herr, ErrNoAgent) {
			return err
		}
		return fmt.Errorf("bpf: the running agent did not hand its programs over: %w", herr)
	}
	return bpflsm.ClaimPinned(a.cfg.BPF.PinPath)
}

// ownFiles are the agent's files and what is sealed of each.
func (a *Agent) ownFiles() map[string]uint32 {
	out := map[string]uint32{}
	const file = bpflsm.SealContent | bpflsm.SealName
	const dir = bpflsm.SealEntries | bpflsm.SealName
	add := func(p string, f uint32) {
		if p == "" {
			return
		}
		out[p] |= f
		// The directories above it may not be renamed or removed: a
		// directory put in their place would hold other files.
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			out[d] |= bpflsm.SealName
		}
		if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
			out[r] |= f &^ bpflsm.SealEntries
		}
	}
	if exe, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		// Its content only: an upgrade installs the next executable by
		// renaming it over this one (drmfilter upgrade --await).
		add(exe, bpflsm.SealContent)
	}
	add(a.configFile, file)
	if a.source == nil {
		for _, p := range a.cfg.Policies {
			fi, err := os.Stat(p)
			if err != nil {
				continue
			}
			if !fi.IsDir() {
				add(p, file)
				continue
			}
			add(p, dir)
			entries, _ := os.ReadDir(p)
			for _, e := range entries {
				add(filepath.Join(p, e.Name()), file)
			}
		}
	}
	for _, k := range a.cfg.AdminKeys {
		add(k, file)
	}
	if r := a.cfg.BPF.RecordFile; r != "" && a.cfg.BPF.PinPath != "" {
		// The record a boot without BPF LSM is noticed by.
		add(filepath.Dir(r), dir)
		add(r, file)
	}
	if f := a.cfg.Audit.File; f != "" {
		add(filepath.Dir(f), dir)
		matches, _ := filepath.Glob(f + "*")
		for _, m := range append(matches, f) {
			add(m, file)
		}
	}
	for _, s := range []string{a.cfg.AdminSocket, a.cfg.StatusSocket} {
		if s != "" {
			add(filepath.Dir(s), dir)
		}
	}
	return out
}

// seal seals the agent's files now and keeps them sealed until ctx is
// done.
func (a *Agent) sealOwnFiles(ctx context.Context, b *bpflsm.Backend) {
	if !a.cfg.BPF.SelfProtect {
		return
	}
	for {
		if err := b.Seal(a.ownFiles()); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Warn("sealing the agent's files", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(resealEvery):
		case <-a.resealNow:
		}
	}
}

// protectionStatus is the tamper resistance in force and what root could
// still do here (see the README's threat model).
func (a *Agent) protectionStatus() ProtectionStatus {
	var p ProtectionStatus
	b := a.bpf.Load()
	if b != nil && a.cfg.BPF.PinPath != "" {
		p.Pinned, p.PinPath = true, a.cfg.BPF.PinPath
		p.TookOverGeneration = b.TookOver()
	}
	p.SelfProtect = b != nil && a.cfg.BPF.SelfProtect
	p.KernelLocked = b != nil && a.cfg.BPF.LockKernel
	p.Lockdown, p.ModulesDisabled, p.Warnings = kernelEscapes(a.backend, a.cfg.BPF.LockKernel)
	p.Signs = a.foundSigns()
	return p
}

// lockKernelIgnored says that bpf.lockKernel needs the bpf backend.
const lockKernelIgnored = "bpf.lockKernel is set, but the fanotify backend has no programs to refuse kernel modules and kexec: it is not in force"

// kernelEscapes reads the kernel's lockdown mode and whether modules can
// be loaded, and says what root can still do to get around backend, with
// bpf.lockKernel set as locked.
func kernelEscapes(backend string, locked bool) (lockdown string, modulesDisabled bool, warnings []string) {
	if b, err := os.ReadFile("/sys/kernel/security/lockdown"); err == nil {
		// "none [integrity] confidentiality": the mode in force is bracketed.
		f := string(b)
		if i, j := strings.IndexByte(f, '['), strings.IndexByte(f, ']'); i >= 0 && j > i {
			lockdown = f[i+1 : j]
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/modules_disabled"); err == nil {
		modulesDisabled = strings.TrimSpace(string(b)) == "1"
	} else if _, err := os.Stat(modulesFile); errors.Is(err, fs.ErrNotExist) {
		// A kernel built without module support loads none.
		modulesDisabled = true
	}
	if backend != config.BackendBPF {
		warnings = append(warnings, "the fanotify backend enforces only while the agent runs: root can stop it (kill) and every file is open")
		if locked {
			warnings = append(warnings, lockKernelIgnored)
		}
		return
	}
	switch {
	case locked:
		// bpf.lockKernel: the programs refuse modules and kexec images.
	case !modulesDisabled && (lockdown == "" || lockdown == "none"):
		warnings = append(warnings, "root can load a kernel module (no lockdown, kernel.modules_disabled=0, bpf.lockKernel off), which can detach the programs")
	}
	if lockdown == "" || lockdown == "none" {
		if locked {
			warnings = append(warnings, "no kernel lockdown: root can write kernel memory (/dev/mem, kprobes)")
		} else {
			warnings = append(warnings, "no kernel lockdown: root can write kernel memory (/dev/mem, kprobes, kexec of another kernel)")
		}
	}
	warnings = append(warnings, "root can reboot without bpf in lsm= (the programs are not loaded before the agent starts), or write the filesystem's block device directly")
	return
}
