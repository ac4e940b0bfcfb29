package agent

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/signs"
)

// modulesFile lists the loaded kernel modules (watchModules reads a
// copy in tests).
const modulesFile = "/proc/modules"

// checkRecord compares the enforcement record the last agent left with
// what this start finds (before this agent pins anything), and keeps the
// signs that its enforcement was got around.
func (a *Agent) checkRecord() {
	path := a.cfg.BPF.RecordFile
	if path == "" || a.cfg.BPF.PinPath == "" {
		return
	}
	prev, err := signs.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		a.log.Warn("cannot read the enforcement record: a boot without BPF LSM would not be noticed this time", "error", err)
		return
	}
	if !signs.Expects(prev) {
		return
	}
	now := signs.Now{BootID: signs.BootID(), Kernel: kernelRelease(), Pinned: bpflsm.Pinned(a.cfg.BPF.PinPath)}
	if p := a.probe(); p.OK {
		now.BPFLSM = true
	} else {
		now.Reason = p.Reason
	}
	for _, s := range signs.Compare(prev, now, time.Now()) {
		a.addSign(s)
	}
}

// writeRecord records that this agent enforces with the bpf backend's
// programs (or, with unloaded, that it removed them).
func (a *Agent) writeRecord(unloaded bool) {
	path := a.cfg.BPF.RecordFile
	if path == "" || a.cfg.BPF.PinPath == "" || a.backend != config.BackendBPF {
		return
	}
	r := signs.Record{BootID: signs.BootID(), Kernel: kernelRelease(), Backend: a.backend, Pinned: true,
		SelfProtect: a.cfg.BPF.SelfProtect, Unloaded: unloaded, Updated: time.Now().UTC()}
	if err := signs.Write(path, r); err != nil {
		a.log.Warn("cannot write the enforcement record: a later boot without BPF LSM would not be noticed", "error", err)
	}
}

// addSign keeps s for status, counts it, logs it and writes it as an
// audit record.
func (a *Agent) addSign(s signs.Sign) {
	a.signMu.Lock()
	if len(a.signs) < maxSigns {
		a.signs = append(a.signs, s)
	}
	a.signMu.Unlock()
	a.stats.signs.Add(1)
	a.log.Warn("a sign that root got around the programs", "what", s.What, "detail", s.Detail)
	if a.audit != nil {
		a.audit.Write(signRecord(s, a.envTag))
	}
}

// maxSigns bounds the signs status keeps (the audit log has them all).
const maxSigns = 64

func signRecord(s signs.Sign, env string) *audit.Record {
	return &audit.Record{Time: s.Seen, Decision: audit.DecisionSign, Mode: audit.ModeEnforce, Operation: audit.OpTamper,
		UID: audit.UnknownID, GID: audit.UnknownID, Env: env, Reason: s.What + ": " + s.Detail}
}

// foundSigns returns the signs kept so far.
func (a *Agent) foundSigns() []signs.Sign {
	a.signMu.Lock()
	defer a.signMu.Unlock()
	return append([]signs.Sign(nil), a.signs...)
}

// watchModules reports, every resealEvery until ctx is done, the kernel
// modules loaded since the agent started: a module can detach the
// programs, and only lockdown or kernel.modules_disabled stops root from
// loading one.
func (a *Agent) watchModules(ctx context.Context, path string) {
	before, err := signs.Modules(path)
	if errors.Is(err, fs.ErrNotExist) {
		a.log.Debug("the kernel has no module support: no module can be loaded", "path", path)
		return
	}
	if err != nil {
		a.log.Warn("cannot list the kernel modules: modules loaded while the agent runs are not reported", "error", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(resealEvery):
		}
		now, err := signs.Modules(path)
		if err != nil {
			continue
		}
		for _, m := range signs.Loaded(before, now) {
			a.addSign(signs.Sign{What: signs.ModuleLoaded, Seen: time.Now(),
				Detail: "kernel module " + m + " was loaded while the agent ran: a module can detach the programs or change kernel memory"})
		}
		before = now
	}
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return strings.TrimRight(string(u.Release[:]), "\x00")
}
