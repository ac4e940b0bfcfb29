package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drmfilter/drmfilter/internal/accounts"
	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/cri"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/fanotify"
	"github.com/drmfilter/drmfilter/internal/nspath"
	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/proc"
	"github.com/drmfilter/drmfilter/internal/signs"
	"github.com/drmfilter/drmfilter/internal/storage"
	"github.com/drmfilter/drmfilter/internal/version"

	"golang.org/x/sys/unix"
)

// auditLinger is how late an audit record may be written.
const auditLinger = 5 * time.Millisecond

// ErrPolicy is matched by errors that mean the policies could not be
// loaded (as opposed to a kernel or I/O failure).
var ErrPolicy = errors.New("policy could not be loaded")

// Options are what New needs besides the configuration.
type Options struct {
	Config config.Config
	Logger *slog.Logger
	// Env is the detected environment; nil means detect it now.
	Env *environ.Report
	// AuditSinks replace the sinks built from Config.Audit (tests).
	AuditSinks []audit.Sink
	// Stdout receives audit records when Config.Audit.Stdout is set;
	// os.Stdout when nil.
	Stdout io.Writer

	// ConfigFile is the configuration file Config was read from ("" for
	// none): on the bpf backend with self-protection it is one of the
	// agent's files that no other process may change.
	ConfigFile string

	// PolicySource, when set, returns the policy files to load in place of
	// reading Config.Policies: the agent in a Kubernetes cluster reads its
	// policy ConfigMap through the API server this way.
	PolicySource func() ([]policy.Source, error)
	// PodLabels, when set, gives the current labels of a pod by UID, in
	// place of those the container runtime reports (the labels at pod
	// creation); false means not known, and the runtime's are used. In a
	// cluster it is a watch of the node's pods through the API server.
	PodLabels func(uid string) (map[string]string, bool)

	// decideHook, when set, runs at the start of every covered decision
	// (tests stall decisions with it).
	decideHook func()
	// probe, when set, replaces bpflsm.Probe (tests).
	probe func() bpflsm.Availability
}

// Agent is one running drmfilter agent. Create it with New, start it with
// Run.
type Agent struct {
	cfg        config.Config
	configFile string
	tuning     config.Tuning
	log        *slog.Logger
	env        environ.Report
	penv       policy.Env
	envTag     string
	selfPID    int32
	failV      fanotify.Verdict

	state  atomic.Pointer[policyState]
	mounts atomic.Pointer[storage.Mounts]
	index  *identityIndex
	procs  *proc.Resolver
	cri    *cri.Client      // nil when pod metadata is disabled
	ns     *nspath.Resolver // container paths
	audit  *audit.Writer
	exempt *exemption
	stats  *stats
	hook   func()
	grants execGrants
	source func() ([]policy.Source, error)
	labels func(uid string) (map[string]string, bool)

	policyErr atomic.Pointer[string] // the last rejected reload; nil after a good one

	// backend is what enforces (config.BackendBPF or BackendFanotify) and
	// backendReason why it was chosen; bpf is the loaded programs while
	// the bpf backend runs.
	backend, backendReason string
	bpf                    atomic.Pointer[bpflsm.Backend]
	bpfReplaced            chan struct{} // a new plan is in force (watchBPFExes watches its executables)
	// stopReq takes an authorized stop from the admin socket; Run puts
	// the one it took in stopping, and answers it when it has stopped.
	stopReq chan stopRequest
	// resealNow asks sealOwnFiles to seal the agent's files again (a
	// policy file was written).
	resealNow chan struct{}
	stopping  atomic.Pointer[stopRequest]
	// signMu guards signs: what was found that root got around the
	// programs (internal/signs).
	signMu sync.Mutex
	signs  []signs.Sign
	probe  func() bpflsm.Availability

	fan      *fanotify.Listener
	names    *fanotify.Watcher // nil when the kernel cannot report name changes
	watched  map[string]bool   // mount points the name watcher watches
	reloadMu sync.Mutex        // serialises Reload
	// marksMu guards the marks (fan, marked, watched, markedSnap writes).
	// It is not reloadMu: a reload that reads a slow policy source or
	// re-indexes a million files must not keep a new mount unmarked.
	// Reload takes it inside reloadMu, and only to update the marks.
	marksMu sync.Mutex
	// reloadSince is when the reload now running started (UnixNano), 0
	// when none is; Status reports it.
	reloadSince atomic.Int64

	policyWatched  atomic.Bool   // WatchPolicies is running with its watches set up
	watchReady     chan struct{} // closed the first time they are
	watchReadyOnce sync.Once
	rewalk         chan struct{} // the identity index's learned part is full
	marked         map[string]uint64
	// markedSnap is the sorted list of marked mount points, for Status.
	markedSnap atomic.Pointer[[]string]
	started    time.Time
	ready      atomic.Bool
}

// policyState is one loaded policy generation. It is replaced whole.
type policyState struct {
	m        *policy.Matcher
	gen      uint64
	hash     string
	loadedAt time.Time
	files    []string
	mask     uint64
	roots    []string
	anywhere bool
}

// New loads the policies and prepares the agent; nothing is marked until
// Run. A policy that does not load is an error matching ErrPolicy.
func New(opts Options) (*Agent, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	a := &Agent{cfg: opts.Config, configFile: opts.ConfigFile, log: log, selfPID: int32(os.Getpid()), stats: newStats(), marked: map[string]uint64{}, watched: map[string]bool{}, started: time.Now(), hook: opts.decideHook, source: opts.PolicySource, labels: opts.PodLabels, watchReady: make(chan struct{})}
	if opts.Env != nil {
		a.env = *opts.Env
	} else {
		a.env = environ.Detect(context.Background(), environ.Options{Root: a.cfg.HostRoot, NoMounts: true})
	}
	a.penv = policy.Env{
		Virtual:     a.env.Hypervisor != "" && a.env.Hypervisor != "none",
		Hypervisor:  noneToEmpty(a.env.Hypervisor),
		Cloud:       noneToEmpty(a.env.Cloud),
		InContainer: a.env.Container != "" && a.env.Container != "none",
	}
	a.envTag = strings.Join([]string{orNone(a.env.Hypervisor), orNone(a.env.Cloud), orNone(a.env.Container)}, "/")
	a.tuning = a.cfg.Tune(config.Facts{Hypervisor: a.env.Hypervisor, Cloud: a.env.Cloud, Nested: a.env.Nested.Available, CPUs: runtime.NumCPU()})
	if err := a.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	a.failV = fanotify.Allow
	if a.cfg.FailureMode == config.FailClosed {
		a.failV = fanotify.Deny
	}
	st, err := a.load(1)
	if err != nil {
		return nil, err
	}
	a.bpfReplaced = make(chan struct{}, 1)
	a.stopReq = make(chan stopRequest)
	a.resealNow = make(chan struct{}, 1)
	a.probe = opts.probe
	if a.probe == nil {
		a.probe = bpflsm.Probe
	}
	if a.backend, a.backendReason, err = chooseBackend(a.cfg.Backend, st.m.Set(), a.probe); err != nil {
		return nil, err
	}
	if a.backend == config.BackendFanotify {
		if errs := st.m.Set().Unsupported(policy.FanotifyBackend()); len(errs) > 0 {
			return nil, fmt.Errorf("%w: %w (backend %s: %s)", ErrPolicy, errs, a.backend, a.backendReason)
		}
	}
	if a.cfg.BPF.LockKernel && a.backend != config.BackendBPF {
		a.log.Warn(lockKernelIgnored, "backend", a.backend, "backendReason", a.backendReason)
	}
	a.checkRecord()
	if err := a.claimPinned(); err != nil {
		return nil, err
	}
	a.state.Store(st)
	if err := a.refreshMounts(); err != nil {
		return nil, err
	}
	a.index = newIdentityIndex(maxIndexed)
	a.rewalk = make(chan struct{}, 1)
	a.index.onFull = func() {
		select {
		case a.rewalk <- struct{}{}:
		default:
		}
	}
	a.procs = proc.NewResolver(a.cfg.HostRoot, proc.Options{Cgroups: true})
	a.exempt = newExemption(a.cfg)
	if !a.cfg.CRI.Disabled {
		a.cri = cri.New(cri.Options{Endpoints: a.cfg.CRI.Endpoints, Root: a.cfg.HostRoot})
	}
	a.ns = nspath.New(a.cfg.HostRoot, nspath.Options{})

	sinks := opts.AuditSinks
	if sinks == nil {
		if a.cfg.Audit.File != "" {
			fs, err := audit.NewFileSink(a.cfg.Audit.File, int64(a.cfg.Audit.MaxSizeMB)<<20, a.cfg.Audit.Backups)
			if err != nil {
				return nil, fmt.Errorf("audit log: %w", err)
			}
			sinks = append(sinks, fs)
		}
		if a.cfg.Audit.Stdout {
			w := opts.Stdout
			if w == nil {
				w = os.Stdout
			}
			sinks = append(sinks, audit.NewStreamSink(w))
		}
	}
	// Records are written within auditLinger, in batches: a wake-up of the
	// writer per denied open would take CPU from the decisions.
	a.audit = audit.New(audit.Options{QueueSize: a.cfg.Audit.QueueSize, Linger: auditLinger,
		Limit: audit.LimitOptions{Window: a.cfg.Audit.RepeatWindow, PerUID: a.cfg.Audit.PerUserRecords}}, sinks...)
	for _, s := range a.foundSigns() { // found before the audit log was open
		a.audit.Write(signRecord(s, a.envTag))
	}
	return a, nil
}

// load reads and compiles the configured policies.
func (a *Agent) load(gen uint64) (*policyState, error) {
	read := a.source
	if read == nil {
		read = func() ([]policy.Source, error) { return policy.ReadPaths(a.cfg.Policies) }
	}
	srcs, err := read()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	var lopts policy.LoadOptions
	if root := a.cfg.HostRoot; root != "" && root != "/" {
		// In a pod, user and group names are the host's, not the image's.
		lopts.Resolver = accounts.Files{Root: root}
	}
	set, err := policy.Load(srcs, lopts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	m := policy.Compile(set, policy.CompileOptions{ForceAudit: a.cfg.Mode == "audit"})
	st := &policyState{m: m, gen: gen, hash: set.Hash, loadedAt: time.Now(), files: set.Files, mask: maskFor(m.Operations())}
	st.roots, st.anywhere = m.Roots()
	return st, nil
}

func maskFor(ops policy.Operation) uint64 {
	var mask uint64
	if ops&policy.OpOpen != 0 {
		mask |= fanotify.OpenPerm
	}
	if ops&policy.OpExec != 0 {
		// Opens too: the loader and interpreters run code they open
		// (see runsCode).
		mask |= fanotify.OpenExecPerm | fanotify.OpenPerm
	}
	if ops&policy.OpRead != 0 {
		mask |= fanotify.AccessPerm
	}
	return mask
}

func (a *Agent) refreshMounts() error {
	ms, err := storage.LoadMounts(a.cfg.HostRoot, 0)
	if ms == nil {
		return fmt.Errorf("mount table: %w", err)
	}
	if err != nil {
		a.log.Warn("some mount table lines could not be read", "error", err)
	}
	a.mounts.Store(ms)
	return nil
}

// Settings returns the effective settings, for the start-up log and status.
func (a *Agent) Settings() map[string]string {
	return map[string]string{
		"mode":        a.cfg.Mode,
		"backend":     a.backend,
		"failureMode": string(a.cfg.FailureMode),
		"deadline":    a.cfg.Deadline.String(),
		"workers":     fmt.Sprint(a.cfg.Workers),
		"spin":        a.cfg.Spin.String(),
		"queueSize":   fmt.Sprint(a.cfg.QueueSize),
		"tuning":      a.tuning.Reason,
		"environment": a.envTag,
		"ignoreMarks": fmt.Sprint(a.cfg.IgnoreMarksEnabled()),
		"exemption":   fmt.Sprint(a.cfg.ExemptionEnabled()),
	}
}

// Run opens fanotify, marks what the policies need, and answers events
// until ctx is done. On return every event read has been answered and the
// fanotify descriptor is closed, which allows whatever was still queued.
func (a *Agent) Run(ctx context.Context) (err error) {
	// An authorized stop from the admin socket ends Run as ctx does, and
	// is answered once Run has done what it asked. After a handover the
	// process is no longer the agent: Run waits for its own end (ctx), so
	// that a supervisor (the kubelet) stops it, rather than restarts it.
	outer := ctx
	defer func() {
		if sr := a.stopping.Load(); sr != nil && sr.handover != 0 && err == nil {
			a.log.Info("handed the programs over; waiting to be stopped", "to", sr.handover)
			<-outer.Done()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case sr := <-a.stopReq:
			a.stopping.Store(&sr)
			cancel()
		case <-ctx.Done():
		}
	}()
	defer func() {
		if sr := a.stopping.Load(); sr != nil {
			sr.done <- err
			select { // the requester has its answer before the process may exit
			case <-sr.answered:
			case <-time.After(5 * time.Second):
			}
		}
	}()
	if a.backend == config.BackendBPF {
		return a.runBPF(ctx)
	}
	if sr := a.stopping.Load(); sr != nil && (sr.unload || sr.exe != "") {
		a.log.Info("an authorized stop: the fanotify backend has no programs to unload or hand over")
	}
	fan, err := fanotify.Open(fanotify.Options{UnlimitedQueue: true, UnlimitedMarks: true, Spin: a.cfg.Spin})
	if err != nil {
		return fmt.Errorf("fanotify: %w", err)
	}
	a.fan = fan
	defer fan.Close()
	defer a.audit.Close(context.Background())
	if a.cri != nil {
		defer a.cri.Close()
	}

	if w, err := fanotify.OpenWatcher(fanotify.WatchOptions{}); err != nil {
		a.log.Warn("cannot watch name changes; files renamed or linked into protected places are re-checked only on reload", "error", err)
	} else {
		a.names = w
		defer w.Close()
	}
	// The mount table is watched from before the first marking: a mount
	// made after the marks were placed but before the watch existed
	// would never be marked (seen under load: the watch's goroutine had
	// not opened the table yet when the agent reported ready).
	mountTable, err := a.openMountTable()
	if err != nil {
		a.log.Warn("cannot watch the mount table; new mounts are seen on reload only", "error", err)
	} else {
		defer unix.Close(mountTable)
		if err := a.refreshMounts(); err != nil {
			return err
		}
	}
	st := a.state.Load()
	if err := a.applyMarks(st); err != nil {
		return err
	}
	// Index after marking, so that no name change falls between the walk
	// and the watcher.
	a.index.rebuild(st, a.mounts.Load(), a.penv)
	a.log.Info("drmfilter agent started", "version", version.Get().Version, "policyGeneration", st.gen, "policyHash", st.hash,
		"rules", st.m.Rules(), "marked", a.markedList(), "settings", a.Settings())

	ctx, cancelWorkers := context.WithCancel(ctx)
	defer cancelWorkers()
	var wg sync.WaitGroup
	jobs := make(chan *job, a.cfg.QueueSize)
	for range a.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.worker(jobs)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if mountTable >= 0 {
			a.watchMounts(ctx, mountTable)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.rewalkIndex(ctx)
	}()
	if a.names != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.watchNames(ctx, a.names)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.reportOpenBeforeStart(ctx, st)
	}()
	a.ready.Store(true)
	err = a.readLoop(ctx, jobs)
	a.ready.Store(false)
	cancelWorkers()
	close(jobs) // workers answer what is queued, then stop
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	a.log.Info("drmfilter agent stopped", "events", a.stats.total.Load())
	return err
}

// rewalkIndex walks the policies' roots again whenever the identity index
// asks for it (the files it learned since the last walk fill its bounded
// part), so that they are frozen into its compact table.
func (a *Agent) rewalkIndex(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.rewalk:
		}
		before := a.index.len()
		a.index.rebuild(a.state.Load(), a.mounts.Load(), a.penv)
		a.log.Info("identity index walked again: the files learned since the last walk filled its bounded part",
			"before", before, "indexed", a.index.len())
	}
}

// Reload loads the policies again and, if they are valid, swaps them in
// atomically and updates the marks. A bad policy leaves the previous one in
// force and is returned as an error.
//
// Reloads run one at a time; while one runs, Status reports since when
// (Policy.ReloadInProgressSince), and marks still follow new mounts.
func (a *Agent) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	a.reloadSince.Store(start.UnixNano())
	defer a.reloadSince.Store(0)
	defer func() {
		if d := time.Since(start); d > reloadStallAfter {
			a.log.Warn("a policy reload took long; later reloads waited for it", "duration", d.Round(time.Second))
		}
	}()
	old := a.state.Load()
	st, err := a.load(old.gen + 1)
	if err != nil {
		a.stats.reloadFailures.Add(1)
		msg := err.Error()
		a.policyErr.Store(&msg)
		a.log.Error("policy reload rejected; the previous policy stays in force", "error", err, "generation", old.gen)
		return err
	}
	if a.backend == config.BackendBPF {
		if errs := bpflsm.Unsupported(st.m.Set()); len(errs) > 0 {
			err = fmt.Errorf("%w: %w", ErrPolicy, errors.Join(errs...))
		}
	} else if errs := st.m.Set().Unsupported(policy.FanotifyBackend()); len(errs) > 0 {
		err = fmt.Errorf("%w: %w", ErrPolicy, errs)
	}
	if err != nil {
		a.stats.reloadFailures.Add(1)
		msg := err.Error()
		a.policyErr.Store(&msg)
		a.log.Error("policy reload rejected; the previous policy stays in force", "error", err, "generation", old.gen, "backend", a.backend)
		return err
	}
	a.policyErr.Store(nil)
	if st.hash == old.hash {
		return nil
	}
	if a.backend == config.BackendBPF {
		if err := a.reloadBPF(st); err != nil {
			a.stats.reloadFailures.Add(1)
			msg := err.Error()
			a.policyErr.Store(&msg)
			a.log.Error("policy reload could not be loaded into the kernel; the previous policy stays in force", "error", err, "generation", old.gen)
			return err
		}
		a.state.Store(st)
		a.log.Info("policies reloaded", "generation", st.gen, "hash", st.hash, "rules", st.m.Rules(), "backend", a.backend)
		return nil
	}
	a.index.rebuild(st, a.mounts.Load(), a.penv)
	a.state.Store(st)
	a.remarkAfterReload(st)
	a.log.Info("policies reloaded", "generation", st.gen, "hash", st.hash, "rules", st.m.Rules())
	return nil
}

// ReopenAudit reopens the audit file (after logrotate moved it).
func (a *Agent) ReopenAudit() error { return a.audit.Reopen() }

// WatchPolicies reloads when a policy file or directory changes, including
// the symlink swap of a Kubernetes ConfigMap volume, until ctx is done.
// Once its watches exist it reloads once, so that a change made between
// the agent's first load and the watch is not lost, and then reports the
// watch in Status().Policy.Watched and closes PolicyWatchReady.
func (a *Agent) WatchPolicies(ctx context.Context) error {
	defer a.policyWatched.Store(false)
	return watchPaths(ctx, a.cfg.Policies, 200*time.Millisecond, func() {
		a.policyWatched.Store(true)
		a.watchReadyOnce.Do(func() { close(a.watchReady) })
	}, func() {
		_ = a.Reload()
	})
}

// PolicyWatchReady is closed once WatchPolicies has established its
// watches and caught up with any change made before them.
func (a *Agent) PolicyWatchReady() <-chan struct{} { return a.watchReady }

func noneToEmpty(s string) string {
	if s == "none" {
		return ""
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// nearestExisting returns the nearest existing path at or above p, as the
// host sees it under root.
func nearestExisting(root, p string) string {
	for {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil || p == "/" {
			return p
		}
		p = filepath.Dir(p)
	}
}
