package agent

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/signs"
	"github.com/drmfilter/drmfilter/internal/version"
)

// Status is what `drmfilter status` shows. Its JSON form is stable.
type Status struct {
	Version     string `json:"version"`
	PID         int    `json:"pid"`
	Uptime      string `json:"uptime"`
	Ready       bool   `json:"ready"`
	Mode        string `json:"mode"`
	FailureMode string `json:"failureMode"`
	// Backend is what enforces (bpf or fanotify) and BackendReason why.
	Backend       string            `json:"backend"`
	BackendReason string            `json:"backendReason"`
	Policy        PolicyStatus      `json:"policy"`
	Environment   EnvSummary        `json:"environment"`
	Settings      map[string]string `json:"settings"`
	Marked        []string          `json:"markedFilesystems"`
	IndexedFiles  int               `json:"indexedFiles"`
	Counters      map[string]uint64 `json:"counters"`
	AuditDropped  uint64            `json:"auditDropped"`
	AuditWritten  uint64            `json:"auditWritten"`
	ReloadFailure uint64            `json:"reloadFailures"`
	// Protection is what keeps the enforcement in force without the
	// agent, and from root (bpf backend).
	Protection ProtectionStatus `json:"protection"`
}

// ProtectionStatus reports the bpf backend's tamper resistance and the
// signs that root could still get around it.
type ProtectionStatus struct {
	// Pinned is true when the programs are pinned (at PinPath) and go on
	// enforcing without the agent.
	Pinned  bool   `json:"pinned"`
	PinPath string `json:"pinPath,omitempty"`
	// SelfProtect is true when other processes may not signal, trace or
	// change the agent, its BPF objects, pins or files.
	SelfProtect bool `json:"selfProtect"`
	// TookOverGeneration is the pinned generation this agent took over
	// at start (from an agent that was gone), 0 if none.
	TookOverGeneration uint32 `json:"tookOverGeneration,omitempty"`
	// Lockdown is the kernel's lockdown mode (none, integrity,
	// confidentiality), "" when the kernel has no lockdown LSM.
	Lockdown string `json:"lockdown"`
	// ModulesDisabled is kernel.modules_disabled: no module can be loaded.
	ModulesDisabled bool `json:"modulesDisabled"`
	// KernelLocked is bpf.lockKernel in force: the programs refuse every
	// process loading a kernel module or a kernel to kexec.
	KernelLocked bool `json:"kernelLocked"`
	// Warnings are what root can still do on this machine to get around
	// the programs.
	Warnings []string `json:"warnings,omitempty"`
	// Signs are what was found that root got around them: at start, from
	// the record the last agent left (a boot without BPF LSM, pinned
	// programs gone with no authorized stop), and since (kernel modules
	// loaded). Each is also an audit record of decision "sign".
	Signs []signs.Sign `json:"signs,omitempty"`
}

// PolicyStatus describes the policy in force.
type PolicyStatus struct {
	Generation uint64    `json:"generation"`
	Hash       string    `json:"hash"`
	LoadedAt   time.Time `json:"loadedAt"`
	Files      []string  `json:"files"`
	Rules      int       `json:"rules"`
	// Watched is true while the policy files are watched for changes
	// (run --watch); false means only SIGHUP or the API reloads them.
	Watched bool `json:"watched"`
	// Error is the last policy that was rejected (the one above stays in
	// force); empty when the newest policy loaded.
	Error string `json:"error,omitempty"`
	// ReloadInProgressSince is when the reload now running started;
	// absent when none is. Reloads run one at a time, so later reloads
	// (SIGHUP, the policy watch, the API) wait for this one; marking of
	// new mounts does not.
	ReloadInProgressSince *time.Time `json:"reloadInProgressSince,omitempty"`
	// ReloadStalled is true when that reload has run for longer than a
	// minute (reloadStallAfter): a policy source that does not answer,
	// such as a hung network filesystem. Reading a policy file never
	// blocks otherwise (a named pipe is refused).
	ReloadStalled bool `json:"reloadStalled,omitempty"`
}

// reloadStallAfter is how long a reload may run before Status calls it
// stalled. Re-indexing a million protected files takes seconds.
const reloadStallAfter = time.Minute

// reloadStatus reports the reload that started at since (UnixNano, 0 for
// none) as seen at now.
func reloadStatus(since int64, now time.Time) (*time.Time, bool) {
	if since == 0 {
		return nil, false
	}
	t := time.Unix(0, since)
	return &t, now.Sub(t) > reloadStallAfter
}

// EnvSummary is the compact environment of the node.
type EnvSummary struct {
	Hypervisor string `json:"hypervisor"`
	Cloud      string `json:"cloud"`
	Container  string `json:"container"`
	Nested     bool   `json:"nested"`
}

// Status reports the agent's current state.
func (a *Agent) Status() Status {
	st := a.state.Load()
	s := a.stats
	counters := map[string]uint64{
		"events": s.total.Load(), "self": s.self.Load(), "overflows": s.overflows.Load(),
		"indexHits": s.indexHits.Load(), "ignoreMarks": s.ignoreMarks.Load(), "exempt": s.exempt.Load(),
		"late": s.late.Load(), "respondErrors": s.respondErrors.Load(), "mountChanges": s.mountChanges.Load(), "tamperRefused": s.tamper.Load(),
	}
	for i, op := range opNames {
		for j, d := range decisionNames {
			counters[op.String()+"."+d] = s.events[i][j].Load()
		}
	}
	for i, r := range failureNames {
		counters["failure."+r] = s.fails[i].Load()
		counters["failure."+r+".allowed"] = s.failAllows[i].Load()
	}
	counters["execGrants"] = s.grantAllows.Load()
	counters["openBeforeStart"] = s.openBeforeStart.Load()
	counters["openBeforeStart.wouldDeny"] = s.openBeforeStartDenied.Load()
	if b := a.bpf.Load(); b != nil {
		if c, err := b.Counters(); err == nil {
			counters["bpf.covered"], counters["bpf.denied"] = c.Covered, c.Denied
			counters["bpf.wouldDeny"], counters["bpf.eventsLost"] = c.WouldDeny, c.Lost
		}
	}
	var perr string
	if p := a.policyErr.Load(); p != nil {
		perr = *p
	}
	pol := PolicyStatus{Generation: st.gen, Hash: st.hash, LoadedAt: st.loadedAt, Files: st.files, Rules: st.m.Rules(), Watched: a.policyWatched.Load(), Error: perr}
	pol.ReloadInProgressSince, pol.ReloadStalled = reloadStatus(a.reloadSince.Load(), time.Now())
	return Status{
		Version: version.Get().Version, PID: os.Getpid(), Uptime: time.Since(a.started).Round(time.Second).String(),
		Ready: a.ready.Load(), Mode: a.cfg.Mode, FailureMode: string(a.cfg.FailureMode),
		Backend: a.backend, BackendReason: a.backendReason,
		Policy:      pol,
		Environment: EnvSummary{Hypervisor: orNone(a.env.Hypervisor), Cloud: orNone(a.env.Cloud), Container: orNone(a.env.Container), Nested: a.env.Nested.Available},
		Settings:    a.Settings(), Marked: a.markedList(), IndexedFiles: a.index.len(), Counters: counters,
		AuditDropped: a.audit.Dropped(), AuditWritten: a.audit.Written(), ReloadFailure: s.reloadFailures.Load(),
		Protection: a.protectionStatus(),
	}
}

// ServeStatus binds the status socket (ListenStatus) and answers on it
// (ServeStatusOn) until ctx is done; a disabled socket serves nothing.
func (a *Agent) ServeStatus(ctx context.Context) error {
	ln, err := a.ListenStatus()
	if err != nil || ln == nil {
		return err
	}
	return a.ServeStatusOn(ctx, ln)
}

func (a *Agent) answerStatus(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if uid, err := peerUID(c); err != nil || uid != 0 {
		_, _ = c.Write([]byte(`{"error":"permission denied: only root may ask the agent"}` + "\n"))
		return
	}
	_ = json.NewEncoder(c).Encode(a.Status())
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// QueryStatus asks the agent listening on path for its status; the answer
// is believed only from a root listener (QueryAgent).
func QueryStatus(ctx context.Context, path string) (Status, error) { return QueryAgent(ctx, path) }
