package agent

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/proc"
)

// procSubject answers the policy's questions about one process: its
// executable's hash, computed on demand, and which file is installed at a
// path on the host (issue #17, cases 1 and 15: `executables` name the
// host's files, not paths a mount namespace or a container image can
// fill with another program).
type procSubject struct {
	procs *proc.Resolver
	p     *proc.Process
	root  string // the host's / (cfg.HostRoot)
}

func (s *procSubject) SHA256() ([32]byte, error) { return s.procs.SHA256(s.p) }

// Identify stats path below the host root. The path is an executable's as
// /proc/PID/exe prints it: for a host process a path with no symbolic
// link in it, so below a host root other than / (in a pod) it cannot
// resolve into the agent's own image. The Matcher caches the answer.
func (s *procSubject) Identify(path string) (policy.FileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.root, path), &st); err != nil {
		return policy.FileID{}, err
	}
	return policy.FileID{Dev: uint64(st.Dev), Ino: st.Ino, Ctime: st.Ctim.Nano()}, nil
}

// exeNotHostReason adds to an audit record's reason that a rule named the
// process's executable path but the process runs another file (one
// mounted over that path in another mount namespace, a container image's
// own, or one replaced on the host since it started).
func exeNotHostReason(reason, exe string) string {
	why := "executable " + exe + " is not the file installed at that path on the host"
	if reason == "" {
		return why
	}
	return reason + "; " + why
}

// subjectOf is the policy's view of process p (pid as the event names it):
// its executable by path and identity, its credentials, and the questions
// procSubject answers. The caller adds the container and pod.
func (a *Agent) subjectOf(pid int32, p *proc.Process) policy.Subject {
	ps := &procSubject{procs: a.procs, p: p, root: a.cfg.HostRoot}
	return policy.Subject{
		PID: pid, Exe: p.Exe, UID: p.UID, GID: p.GID, Groups: p.Groups,
		ExeID:      policy.FileID{Dev: p.ExeID.Dev, Ino: p.ExeID.Ino, Ctime: p.ExeID.CtimeNs},
		ExeDeleted: p.Deleted,
		Hasher:     ps, Host: ps,
	}
}
