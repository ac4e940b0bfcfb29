package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/version"
)

// chooseBackend decides which backend enforces, and why, from the
// configuration, what the kernel can do and what the policies need.
func chooseBackend(want string, set *policy.Set, probe func() bpflsm.Availability) (backend, reason string, err error) {
	switch want {
	case config.BackendFanotify:
		return config.BackendFanotify, "configured", nil
	case config.BackendBPF:
		a := probe()
		if !a.OK {
			msg := "backend bpf: " + a.Reason
			if a.Fix != "" {
				msg += "; " + a.Fix
			}
			return "", "", errors.New(msg)
		}
		if errs := bpflsm.Unsupported(set); len(errs) > 0 {
			return "", "", fmt.Errorf("%w: %w", ErrPolicy, errors.Join(errs...))
		}
		return config.BackendBPF, "configured; " + a.Reason, nil
	}
	a := probe()
	if !a.OK {
		return config.BackendFanotify, "auto: BPF LSM is not available: " + a.Reason, nil
	}
	if errs := bpflsm.Unsupported(set); len(errs) > 0 {
		return config.BackendFanotify, "auto: BPF LSM is available, but the policies use what the bpf backend does not decide yet: " + errs[0].Error(), nil
	}
	return config.BackendBPF, "auto: " + a.Reason, nil
}

// buildPlan turns a policy generation into the kernel's maps.
func (a *Agent) buildPlan(st *policyState) (*bpflsm.Plan, error) {
	plan, err := bpflsm.Build(st.m, bpflsm.BuildOptions{HostRoot: a.cfg.HostRoot, Mounts: a.mounts.Load(), Env: a.penv})
	if err != nil {
		return nil, fmt.Errorf("bpf plan: %w", err)
	}
	return plan, nil
}

// runBPF enforces with the BPF-LSM programs until ctx is done. When it
// returns, the programs are detached.
func (a *Agent) runBPF(ctx context.Context) error {
	defer a.audit.Close(context.Background())
	// Watched from before the build, so that no mount falls between.
	mountTable, err := a.openMountTable()
	if err != nil {
		a.log.Warn("cannot watch the mount table; filesystems mounted below protected directories are placed at the next reload", "error", err)
	} else {
		defer unix.Close(mountTable)
		if err := a.refreshMounts(); err != nil {
			return err
		}
	}
	st := a.state.Load()
	plan, err := a.buildPlan(st)
	if err != nil {
		return err
	}
	var trusted []string
	for _, d := range a.cfg.BPF.TrustedCodeDirs {
		trusted = append(trusted, filepath.Join(a.cfg.HostRoot, d))
	}
	b, err := bpflsm.Load(plan, bpflsm.Options{MaxFiles: a.cfg.BPF.MaxFiles, PinPath: a.cfg.BPF.PinPath,
		Protect: a.cfg.BPF.SelfProtect, Keyed: len(a.cfg.AdminKeys) > 0, TrustedCodeDirs: trusted, LockKernel: a.cfg.BPF.LockKernel})
	if err != nil {
		return err
	}
	a.bpf.Store(b)
	defer func() {
		a.bpf.Store(nil)
		_ = b.Close()
	}()
	a.writeRecord(false)
	modulesDone := make(chan struct{})
	go func() {
		defer close(modulesDone)
		a.watchModules(ctx, modulesFile)
	}()
	defer func() { <-modulesDone }()
	if lockdown, modules, warnings := kernelEscapes(a.backend, a.cfg.BPF.LockKernel); len(warnings) > 0 {
		a.log.Warn("what root can still do to get around the programs on this machine", "lockdown", lockdown, "modulesDisabled", modules, "warnings", warnings)
	}
	if g := b.TookOver(); g != 0 {
		a.log.Info("took over the programs pinned by an agent that is gone; they enforced its policy until now",
			"pinPath", a.cfg.BPF.PinPath, "pinnedGeneration", g)
	}
	a.log.Info("drmfilter agent started", "version", version.Get().Version, "backend", a.backend, "backendReason", a.backendReason,
		"policyGeneration", st.gen, "policyHash", st.hash, "rules", st.m.Rules(),
		"files", len(plan.Files), "trees", len(plan.Dirs), "settings", a.Settings())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.readBPFEvents(ctx, b)
	}()
	if a.cfg.BPF.SelfProtect {
		if err := b.Seal(a.ownFiles()); err != nil {
			return err
		}
		sealDone := make(chan struct{})
		go func() {
			defer close(sealDone)
			a.sealOwnFiles(ctx, b)
		}()
		defer func() { <-sealDone }()
	}
	exesDone := make(chan struct{})
	go func() {
		defer close(exesDone)
		a.watchBPFExes(ctx, b)
	}()
	defer func() { <-exesDone }()
	if mountTable >= 0 {
		mountsDone := make(chan struct{})
		go func() {
			defer close(mountsDone)
			a.watchBPFMounts(ctx, b, mountTable)
		}()
		defer func() { <-mountsDone }()
	}
	a.ready.Store(true)
	<-ctx.Done()
	a.ready.Store(false)
	<-done // the reader wrote what the programs had reported
	sr := a.stopping.Load()
	switch {
	case sr != nil && sr.unload:
		if err := b.Unload(); err != nil {
			return fmt.Errorf("unload the programs: %w", err)
		}
		a.writeRecord(true)
		a.log.Info("drmfilter agent stopped; its programs are unloaded: the kernel no longer enforces the policies")
	case sr != nil && sr.handover != 0:
		if err := b.HandOver(int(sr.handover)); err != nil {
			return fmt.Errorf("hand the programs over to pid %d: %w", sr.handover, err)
		}
		_ = b.Close()
		a.log.Info("handed the pinned programs over to the agent that asked; it enforces from now on", "pid", sr.handover)
	case sr != nil && sr.exe != "":
		if err := b.TrustSuccessor(filepath.Join(a.cfg.HostRoot, sr.exe)); err != nil {
			return fmt.Errorf("hand the programs to %s: %w", sr.exe, err)
		}
		_ = b.Close()
		a.log.Info("drmfilter agent stopped; its pinned programs go on enforcing until the new executable takes them over", "exe", sr.exe)
	case a.cfg.BPF.PinPath != "":
		_ = b.Close()
		a.log.Info("drmfilter agent stopped; its pinned programs go on enforcing the last policy (drmfilter stop --unload removes them)", "pinPath", a.cfg.BPF.PinPath)
	default:
		_ = b.Close()
		a.log.Info("drmfilter agent stopped")
	}
	return nil
}

// readBPFEvents writes the programs' deny, audit and would-deny events as
// audit records, with the schema and enrichment the fanotify backend
// uses.
// Once ctx is done it writes what is already in the ring buffer, then
// returns: a stop does not lose the records of the last decisions.
func (a *Agent) readBPFEvents(ctx context.Context, b *bpflsm.Backend) {
	for {
		stopping := ctx.Err() != nil
		deadline := time.Now().Add(200 * time.Millisecond) // to look at ctx
		if stopping {
			deadline = time.Now()
		}
		ev, err := b.ReadEvent(deadline)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if stopping {
				return
			}
			continue
		case errors.Is(err, bpflsm.ErrClosed):
			return
		case err != nil:
			a.log.Warn("reading a bpf event failed", "error", err)
			continue
		}
		a.bpfRecord(b, &ev)
	}
}

func (a *Agent) bpfRecord(b *bpflsm.Backend, ev *bpflsm.Event) {
	if ev.Tamper != nil {
		a.tamperRecord(ev)
		return
	}
	op := ev.Operation()
	rec := &audit.Record{Mode: a.cfg.Mode, Operation: op.String(), Path: ev.Path,
		Dev: unix.Mkdev(ev.Dev>>20, ev.Dev&0xfffff), Ino: ev.Ino, PID: int32(ev.TGID), UID: ev.UID, GID: ev.GID, Env: a.envTag}
	if rec.Path == "" {
		rec.Path = ev.Name // not named by the plan: the file's own name
		rec.Reason = "path not known to the agent; name only"
	}
	switch {
	case ev.Unplaced:
		rec.Decision, rec.Reason = audit.DecisionFailure, "path-too-deep"
	case ev.NoClass:
		rec.Decision, rec.Reason = audit.DecisionFailure, audit.ReasonInternalError
	case ev.IndexFull:
		rec.Decision, rec.Reason = audit.DecisionFailure, "index-full"
	case ev.Denied:
		rec.Decision = audit.DecisionDeny
	case ev.WouldDeny:
		rec.Decision, rec.Mode = audit.DecisionWouldDeny, audit.ModeAudit
	default:
		rec.Decision = audit.DecisionAudit
	}
	if rec.Decision == audit.DecisionFailure {
		rec.Verdict = "deny"
	}
	if r := ev.Rule; r != nil {
		rec.Policy, rec.Rule = r.Policy, r.Name
	}
	if len(ev.Taint) > 0 && rec.Decision == audit.DecisionDeny {
		rec.Reason = joinReason(rec.Reason, "no allowance by executable: the process "+strings.Join(ev.Taint, ", "))
	}
	if r := ev.WouldRule; r != nil && !ev.Denied {
		rec.Policy, rec.Rule = r.Policy, r.Name
	}
	if p, err := a.procs.Lookup(int32(ev.TGID), -1); err == nil && p.Exe != "" {
		rec.Exe = p.Exe
		if claimed := (bpflsm.FileKey{Dev: bpflsm.KernelDev(p.ExeID.Dev), Ino: p.ExeID.Ino}); ev.ExeIno != 0 &&
			claimed != (bpflsm.FileKey{Dev: ev.ExeDev, Ino: ev.ExeIno}) && ev.Exe != "" {
			// /proc/PID/exe was pointed elsewhere since the exec
			// (prctl(PR_SET_MM_EXE_FILE)): the record names what the
			// programs decided by.
			rec.Exe = ev.Exe
			rec.Reason = joinReason(rec.Reason, "its /proc/PID/exe says "+p.Exe+", not the executable its exec ran")
		} else {
			a.exeReason(b, rec, ev)
		}
		if p.Container.ID != "" {
			rec.ContainerID, rec.Runtime = p.Container.ID, p.Container.Runtime
		}
	} else if ev.Exe != "" {
		rec.Exe = ev.Exe // the process is gone: its executable as its exec named it
		a.exeReason(b, rec, ev)
	} else if ev.Comm != "" {
		rec.Exe = "[" + strings.TrimSpace(ev.Comm) + "]" // gone, and its exec was not seen: its command name
	}
	a.audit.Write(rec)
}

// exeReason adds to a deny record that a rule named the process's
// executable path but the process runs another file (one mounted over it
// in another namespace, or replaced since it started).
func (a *Agent) exeReason(b *bpflsm.Backend, rec *audit.Record, ev *bpflsm.Event) {
	plan := b.Plan()
	if plan == nil || rec.Decision != audit.DecisionDeny {
		return
	}
	if _, named := plan.Exes[rec.Exe]; !named {
		return
	}
	var st unix.Stat_t
	err := unix.Stat(filepath.Join(a.cfg.HostRoot, rec.Exe), &st)
	if err != nil || bpflsm.KernelDev(st.Dev) != ev.ExeDev || st.Ino != ev.ExeIno {
		rec.Reason = exeNotHostReason(rec.Reason, rec.Exe)
	}
}

// reloadBPF builds the new generation's maps and switches to it.
func (a *Agent) reloadBPF(st *policyState) error {
	b := a.bpf.Load()
	if b == nil {
		return nil // not started yet: Run loads st
	}
	plan, err := a.buildPlan(st)
	if err != nil {
		return err
	}
	if err := b.Replace(plan); err != nil {
		return err
	}
	select {
	case a.bpfReplaced <- struct{}{}:
	default:
	}
	return nil
}

// watchBPFExes keeps the executables the rules name current: the kernel
// knows them by identity, resolved when the plan was built, so when a
// file at such a path is replaced (a package upgrade) the plan is built
// again and swapped in. Until then the new file is not the allowed
// program and the old one, still running, is (see the README's limits).
func (a *Agent) watchBPFExes(ctx context.Context, b *bpflsm.Backend) {
	for ctx.Err() == nil {
		paths := a.bpfWatchPaths(b.Plan())
		wctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		moved := make(chan struct{}, 1)
		if len(paths) > 0 {
			go func() {
				errc <- watchPaths(wctx, paths, 50*time.Millisecond, nil, func() {
					a.refreshBPFExes(b)
					// A directory on the way to one the policies name
					// was made (or removed): the watch moves to the new
					// nearest ancestor, or it would not see the next
					// level made.
					if !slices.Equal(a.bpfWatchPaths(b.Plan()), paths) {
						select {
						case moved <- struct{}{}:
						default:
						}
					}
				})
			}()
		}
		watching := len(paths) > 0
		select {
		case <-ctx.Done():
		case <-a.bpfReplaced:
		case <-moved:
		case err := <-errc:
			watching = false
			if err != nil {
				a.log.Warn("cannot watch the executables the policies name; a replaced one is re-resolved at the next reload", "error", err)
				select { // until the next plan or the end
				case <-ctx.Done():
				case <-a.bpfReplaced:
				}
			}
		}
		cancel()
		if watching {
			<-errc // the watch is closed before the next one starts
		}
	}
}

// bpfWatchPaths are what watchBPFExes watches for plan: the executables
// it names (or, where their directory is missing, its nearest existing
// ancestor) and the nearest existing ancestor of each directory a policy
// names that does not exist yet.
func (a *Agent) bpfWatchPaths(plan *bpflsm.Plan) []string {
	if plan == nil {
		return nil
	}
	root := a.cfg.HostRoot
	var paths []string
	for p := range plan.Exes {
		if _, err := os.Stat(filepath.Join(root, filepath.Dir(p))); err == nil {
			paths = append(paths, filepath.Join(root, p))
		} else {
			paths = append(paths, filepath.Join(root, nearestExisting(root, p)))
		}
	}
	for _, m := range plan.Missing {
		paths = append(paths, filepath.Join(root, nearestExisting(root, m)))
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

// refreshBPFExes builds the plan again if a file at an executable path
// the rules name is no longer the one the plan knows.
func (a *Agent) refreshBPFExes(b *bpflsm.Backend) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	plan := b.Plan()
	if plan == nil {
		return
	}
	changed := ""
	for p, fk := range plan.Exes {
		var st unix.Stat_t
		err := unix.Stat(filepath.Join(a.cfg.HostRoot, p), &st)
		if (err != nil && fk != (bpflsm.FileKey{})) || (err == nil && (bpflsm.KernelDev(st.Dev) != fk.Dev || st.Ino != fk.Ino)) {
			changed = p
			break
		}
	}
	what := "an executable the policies name changed on the host"
	if changed == "" {
		for _, m := range plan.Missing {
			if _, err := os.Stat(filepath.Join(a.cfg.HostRoot, m)); err == nil {
				changed, what = m, "a directory the policies name was created"
				break
			}
		}
	}
	if changed == "" {
		return
	}
	if err := a.reloadBPF(a.state.Load()); err != nil {
		a.log.Error(what+", and the new plan could not be loaded", "path", changed, "error", err)
		return
	}
	a.log.Info(what+"; the kernel's maps were built again", "path", changed)
}

// watchBPFMounts builds the plan again when a filesystem is mounted or
// unmounted at or below a directory the policies name: its files are
// placed from its own root, which needs places (f is the mount table,
// opened before the plan was built).
func (a *Agent) watchBPFMounts(ctx context.Context, b *bpflsm.Backend, f int) {
	last := a.mountsUnderRoots()
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(f), Events: unix.POLLPRI}}
		n, err := unix.Poll(fds, 1000) // slices of a second, to notice ctx
		if err != nil && err != unix.EINTR {
			a.log.Warn("polling the mount table", "error", err)
			time.Sleep(time.Second)
			continue
		}
		if n == 0 || fds[0].Revents&(unix.POLLPRI|unix.POLLERR) == 0 {
			continue
		}
		buf := make([]byte, 64<<10)
		_, _ = unix.Seek(f, 0, 0)
		for {
			if n, _ := unix.Read(f, buf); n <= 0 {
				break // read to the end: re-arms the notification
			}
		}
		if err := a.refreshMounts(); err != nil {
			a.log.Warn("re-reading the mount table", "error", err)
			continue
		}
		a.stats.mountChanges.Add(1)
		now := a.mountsUnderRoots()
		if slices.Equal(now, last) {
			continue
		}
		last = now
		a.reloadMu.Lock()
		err = a.reloadBPF(a.state.Load())
		a.reloadMu.Unlock()
		if err != nil {
			a.log.Error("a filesystem was mounted or unmounted where the policies protect files, and the new plan could not be loaded", "error", err)
			continue
		}
		a.log.Info("a filesystem was mounted or unmounted where the policies protect files; the kernel's maps were built again")
	}
}

// mountsUnderRoots are the mount points at, below or on the way to the
// policies' roots: a filesystem mounted on a root's parent hides what the
// plan placed there (or holds the directory the policies name, which did
// not exist yet), as one mounted below a root adds files.
func (a *Agent) mountsUnderRoots() []string {
	roots, _ := a.state.Load().m.Roots()
	var out []string
	for _, mt := range a.mounts.Load().Table().Mounts() {
		for _, r := range roots {
			if r == "/" || mt.MountPoint == r || strings.HasPrefix(mt.MountPoint, r+"/") ||
				mt.MountPoint == "/" || strings.HasPrefix(r, mt.MountPoint+"/") {
				out = append(out, fmt.Sprintf("%s %d", mt.MountPoint, mt.ID))
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// tamperRecord writes a refused attempt on the agent (its process, BPF
// objects or pins) as a deny record of operation "tamper", and logs it.
func (a *Agent) tamperRecord(ev *bpflsm.Event) {
	a.stats.tamper.Add(1)
	rec := &audit.Record{Decision: audit.DecisionDeny, Mode: audit.ModeEnforce, Operation: audit.OpTamper,
		PID: int32(ev.TGID), UID: ev.UID, GID: ev.GID, Env: a.envTag, Reason: ev.Tamper.What + ": " + ev.Tamper.String()}
	if ev.Tamper.Ino != 0 {
		rec.Dev, rec.Ino = unix.Mkdev(ev.Tamper.Dev>>20, ev.Tamper.Dev&0xfffff), ev.Tamper.Ino
	}
	if p, err := a.procs.Lookup(int32(ev.TGID), -1); err == nil && p.Exe != "" {
		rec.Exe = p.Exe
		if p.Container.ID != "" {
			rec.ContainerID, rec.Runtime = p.Container.ID, p.Container.Runtime
		}
	} else if ev.Exe != "" {
		rec.Exe = ev.Exe
	} else if ev.Comm != "" {
		rec.Exe = "[" + strings.TrimSpace(ev.Comm) + "]"
	}
	a.log.Warn("refused an attempt on the agent", "what", ev.Tamper.What, "detail", ev.Tamper.String(), "pid", ev.TGID, "uid", ev.UID, "exe", rec.Exe)
	a.audit.Write(rec)
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
