package agent

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// DecisionOpenBeforeStart is the audit decision of a protected file found
// open by a process when the agent started.
const DecisionOpenBeforeStart = "open-before-start"

// reportOpenBeforeStart finds the protected files that processes already
// hold open when the agent starts, and records each one.
//
// fanotify decides opens; a descriptor opened before the mark existed was
// never decided, and since Linux 6.14 the kernel does not even raise read
// (FAN_ACCESS_PERM) events for it (the file is FMODE_NONOTIFY_PERM). The
// agent cannot take such a descriptor back: it records the process, the
// file and what the policy would now say, so that an administrator can
// act (restart the service, or kill it), and counts them in status and
// metrics. The BPF-LSM backend, which decides every read in the kernel,
// does not have this gap.
func (a *Agent) reportOpenBeforeStart(ctx context.Context, st *policyState) {
	procDir := filepath.Join(a.cfg.HostRoot, "proc")
	ents, err := os.ReadDir(procDir)
	if err != nil {
		a.log.Warn("cannot look for protected files open before the start", "error", err)
		return
	}
	mounts := a.mounts.Load()
	var denied int
	for _, e := range ents {
		if ctx.Err() != nil {
			return
		}
		pid, err := strconv.Atoi(e.Name())
		if err != nil || int32(pid) == a.selfPID {
			continue
		}
		fdDir := filepath.Join(procDir, e.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or a kernel thread
		}
		for _, fd := range fds {
			link := filepath.Join(fdDir, fd.Name())
			var sb unix.Stat_t
			if unix.Stat(link, &sb) != nil || sb.Mode&unix.S_IFMT != unix.S_IFREG {
				continue // stat follows the magic link without opening the file
			}
			path, ok := a.index.lookup(sb.Dev, sb.Ino)
			if !ok {
				target, err := os.Readlink(link)
				if err != nil || !strings.HasPrefix(target, "/") {
					continue
				}
				path = strings.TrimSuffix(target, " (deleted)")
				_, info := mounts.Lookup(path)
				in := policy.Input{Op: policy.OpOpen, Path: path, FSType: info.FSType, StorageClass: string(info.Class)}
				if !st.m.Decide(&in).Covered {
					continue
				}
			}
			a.stats.openBeforeStart.Add(1)
			rec := &audit.Record{Decision: DecisionOpenBeforeStart, Mode: a.cfg.Mode, Operation: policy.OpOpen.String(),
				Path: path, Dev: sb.Dev, Ino: sb.Ino, PID: int32(pid), Env: a.envTag}
			p, err := a.procs.Lookup(int32(pid), -1)
			if err != nil {
				rec.Reason = "process not identified: " + err.Error()
			} else {
				rec.Exe, rec.UID, rec.GID = p.Exe, p.UID, p.GID
				_, info := mounts.Lookup(path)
				in := policy.Input{Op: policy.OpOpen, Path: path, FSType: info.FSType, StorageClass: string(info.Class),
					Subject: a.subjectOf(int32(pid), p),
					Env:     a.penv}
				if p.Container.ID != "" {
					in.Subject.Container = policy.Container{ID: p.Container.ID, Runtime: p.Container.Runtime}
				}
				if d := st.m.Decide(&in); d.Verdict == policy.Deny {
					rec.Reason, rec.Policy, rec.Rule = "the policy would deny this open", d.Policy, d.Rule
					a.stats.openBeforeStartDenied.Add(1)
					if denied++; denied <= 20 {
						a.log.Warn("a process holds a protected file open from before the agent started, which the policy would deny; restart it to enforce",
							"pid", pid, "exe", p.Exe, "path", path, "policy", d.Policy, "rule", d.Rule)
					}
				} else {
					rec.Reason = "the policy allows this open"
				}
			}
			a.audit.Write(rec)
		}
	}
	if denied > 20 {
		a.log.Warn("more protected files held open from before the start; see the audit log", "denied", denied)
	}
}
