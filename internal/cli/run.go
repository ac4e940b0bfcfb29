package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/examples"
	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/fanotify"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

type runFlags struct {
	configFile  string
	policies    []string
	mode        string
	failureMode string
	backend     string
	auditFile   string
	auditStdout bool
	metrics     string
	status      string
	admin       string
	logLevel    string
	watch       bool
	demo        bool
	deadline    time.Duration
	workers     int
	queueSize   int
	spin        time.Duration
	hostRoot    string
	criEndpoint []string

	// In-cluster mode (--kubernetes).
	kubernetes    bool
	pinPath       string
	selfProtect   bool
	kubeconfig    string
	nodeName      string
	kubeNamespace string
}

func newRunCommand(s Streams) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --policy PATH|DIR",
		Short: "Run the agent: enforce policies on file opens, executions and reads",
		Long: `Run the drmfilter agent in the foreground. It loads the policies, detects the
environment (hypervisor, cloud, container), marks the filesystems that hold
protected files with fanotify, and answers every open, exec and read of them
by policy. Needs root (CAP_SYS_ADMIN) and a kernel with fanotify permission
events.

Settings come from --config (YAML), overridden by flags. Unset timing and
worker settings are tuned to the environment and printed at start.

Reload the policies with SIGHUP; with --watch (the default) the agent also
reloads when a policy file or directory changes, including a Kubernetes
ConfigMap update. A policy that fails to load is rejected and the previous
one stays in force. SIGINT or SIGTERM stop the agent; anything it had not
answered is allowed by the kernel when it exits.

With --kubernetes the agent runs as a pod of the drmfilter DaemonSet (see
'drmfilter deploy kubernetes'): it reads its policies from the
drmfilter-policies ConfigMap through the API server and reloads within
about a second of a change, falling back to the mounted copy (--policy,
/etc/drmfilter/policies by default) while the API server cannot be reached;
and it publishes its node's status (policy hash and generation, policy
error, mode, version, environment) in the Lease drmfilter-node-<node>,
which 'drmfilter fleet status' reads. The node comes from $DRMFILTER_NODE_NAME
or --node-name, the pod from $DRMFILTER_POD_NAME, the namespace from
--kube-namespace or $DRMFILTER_POD_NAMESPACE; the credentials are the pod's
service account, or --kubeconfig outside a cluster.`,
		Example: `  sudo drmfilter run --policy examples/finance-docs.yaml --audit-stdout
  sudo drmfilter run --config /etc/drmfilter/config.yaml
  drmfilter run --kubernetes --host-root=/host --policy=/etc/drmfilter/policies   # in the DaemonSet's pod`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd.Context(), s, cmd, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.configFile, "config", "c", "", "agent configuration file (YAML)")
	fl.StringSliceVarP(&f.policies, "policy", "p", nil, "policy file or directory (repeatable; overrides the config)")
	fl.StringVar(&f.mode, "mode", "", "enforce or audit (audit: record what would be denied, deny nothing)")
	fl.StringVar(&f.backend, "backend", "", "auto, bpf or fanotify: what enforces (default auto: bpf where the kernel runs BPF LSM programs and the policies need nothing it lacks, else fanotify; the choice and its reason are logged and in `drmfilter status`)")
	fl.StringVar(&f.failureMode, "failure-mode", "", "open or closed: the answer when a decision misses its deadline or fails")
	fl.StringVar(&f.auditFile, "audit-file", "", "audit log file (JSON lines); \"-\" disables the file")
	fl.BoolVar(&f.auditStdout, "audit-stdout", false, "also write audit records to standard output")
	fl.StringVar(&f.metrics, "metrics-address", "", "host:port for Prometheus /metrics (default off; 127.0.0.1:9477 keeps it on loopback, another address exposes it to its network; \"-\" disables); the agent does not start if it cannot listen there. /healthz and /readyz are served there only on a port below net.ipv4.ip_unprivileged_port_start: use `drmfilter status --check ready`")
	fl.StringVar(&f.status, "status-socket", "", "unix socket for `drmfilter status`, in a directory only root can write to (default /run/drmfilter/status.sock)")
	fl.StringVar(&f.admin, "admin-socket", "", "unix socket for `drmfilter stop` and `drmfilter upgrade`, in a directory only root can write to (default: admin.sock beside the status socket, /run/drmfilter/admin.sock; - for none)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.watch, "watch", true, "reload when policy files change")
	fl.DurationVar(&f.deadline, "deadline", 0, "per-event decision deadline (default: tuned to the environment)")
	fl.IntVar(&f.workers, "workers", 0, "goroutines deciding covered events (default: tuned)")
	fl.DurationVar(&f.spin, "spin", 0, "how long the reader polls for the next event before sleeping (default: tuned; negative: never)")
	fl.IntVar(&f.queueSize, "queue-size", 0, "covered events waiting for a worker before the failure mode answers (default: tuned)")
	fl.StringVar(&f.hostRoot, "host-root", "", "where the host's / is seen (/host in a pod; default /)")
	fl.StringSliceVar(&f.criEndpoint, "cri-endpoint", nil, "container runtime (CRI) socket for pod identity, as this process sees it (/host/run/... in a pod; repeatable; default: discover the well-known ones under --host-root)")
	fl.BoolVar(&f.kubernetes, "kubernetes", false, "run in a Kubernetes cluster: policies from the ConfigMap, node status in a Lease")
	fl.StringVar(&f.pinPath, "bpf-pin-path", "", "bpf backend: where to pin the programs so that they outlive the agent (default /sys/fs/bpf/drmfilter; none with --kubernetes); - for none")
	fl.BoolVar(&f.selfProtect, "bpf-self-protect", true, "bpf backend: refuse other processes signals, ptrace, the agent's BPF objects, pins and files (default true; false with --kubernetes)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "with --kubernetes: kubeconfig file (default: the pod's service account)")
	fl.StringVar(&f.nodeName, "node-name", "", "with --kubernetes: this node's name (default $"+kubeschema.EnvNodeName+")")
	fl.StringVar(&f.kubeNamespace, "kube-namespace", "", "with --kubernetes: namespace of the ConfigMap and Leases (default $"+kubeschema.EnvPodNamespace+", else "+kubeschema.DefaultNamespace+")")
	fl.BoolVar(&f.demo, "demo", false, "mount a demo directory at "+demoDir+", protect it with examples/demo.yaml and print audit records")
	return cmd
}

func runAgent(ctx context.Context, s Streams, cmd *cobra.Command, f *runFlags) error {
	cfg := config.Default()
	if f.configFile != "" {
		var err error
		if cfg, err = config.LoadFile(f.configFile); err != nil {
			return withCode(exitcode.Failure, err)
		}
	}
	changed := cmd.Flags().Changed
	if changed("policy") {
		cfg.Policies = f.policies
	}
	if f.mode != "" {
		cfg.Mode = f.mode
	}
	if f.backend != "" {
		cfg.Backend = f.backend
	}
	if f.failureMode != "" {
		cfg.FailureMode = config.FailureMode(f.failureMode)
	}
	switch {
	case f.auditFile == "-":
		cfg.Audit.File = ""
	case f.auditFile != "":
		cfg.Audit.File = f.auditFile
	}
	if changed("audit-stdout") {
		cfg.Audit.Stdout = f.auditStdout
	}
	if f.demo {
		pol, cleanup, err := setupDemo(s)
		if err != nil {
			return withCode(exitcode.Failure, err)
		}
		defer cleanup()
		cfg.Policies = []string{pol}
		cfg.Audit.Stdout = true
		if f.auditFile == "" {
			cfg.Audit.File = ""
		}
		if f.status == "" {
			cfg.StatusSocket = "/run/drmfilter-demo.sock" // root's directory: not /tmp, see agent.ListenStatus
		}
		if f.admin == "" {
			cfg.AdminSocket = "/run/drmfilter-demo-admin.sock"
		}
		// The demo's programs go when it ends.
		cfg.BPF.PinPath = ""
		if f.metrics == "" {
			cfg.MetricsAddress = ""
		}
	}
	switch {
	case f.metrics == "-":
		cfg.MetricsAddress = ""
	case f.metrics != "":
		cfg.MetricsAddress = f.metrics
	}
	if f.status != "" {
		cfg.StatusSocket = f.status
	}
	switch {
	case f.admin == "-":
		cfg.AdminSocket = ""
	case f.admin != "":
		cfg.AdminSocket = f.admin
	case f.status != "" && f.status != "-":
		// Beside the status socket given: in the same root-only directory.
		cfg.AdminSocket = filepath.Join(filepath.Dir(f.status), "admin.sock")
	}
	if f.deadline != 0 {
		cfg.Deadline = f.deadline
	}
	if f.workers != 0 {
		cfg.Workers = f.workers
	}
	if f.queueSize != 0 {
		cfg.QueueSize = f.queueSize
	}
	if f.spin != 0 {
		cfg.Spin = f.spin
	}
	if f.hostRoot != "" {
		cfg.HostRoot = f.hostRoot
	}
	if changed("cri-endpoint") {
		cfg.CRI.Endpoints = f.criEndpoint
	}
	switch {
	case f.pinPath == "-":
		cfg.BPF.PinPath = ""
	case f.pinPath != "":
		cfg.BPF.PinPath = f.pinPath
	case f.kubernetes:
		// The DaemonSet gives the pod no host BPF filesystem, and a pod
		// that takes no signal cannot be stopped by the kubelet: in a
		// cluster the programs go with the agent unless asked otherwise.
		cfg.BPF.PinPath = ""
	}
	if changed("bpf-self-protect") {
		cfg.BPF.SelfProtect = f.selfProtect
	} else if f.kubernetes {
		cfg.BPF.SelfProtect = false
	}
	if err := checkClusterFlags(f, changed); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := agent.Options{Config: cfg, Logger: log, Stdout: s.Out, ConfigFile: f.configFile}
	node, err := startCluster(ctx, f, cfg, log)
	if err != nil {
		return err
	}
	if node != nil {
		opts.PolicySource, opts.PodLabels = node.Sources, node.PodLabels
	}
	a, err := agent.New(opts)
	if err != nil {
		if errors.Is(err, agent.ErrPolicy) {
			return withCode(exitcode.PolicyInvalid, err)
		}
		return withCode(exitcode.Failure, err)
	}
	// The metrics address and the status socket are bound before anything
	// else starts: an agent that cannot hold them does not start, rather
	// than enforce while another process answers for it there.
	metricsLn, statusLn, err := listen(a)
	if err != nil {
		a.Close()
		return withCode(exitcode.Failure, err)
	}
	adminLn, err := a.ListenAdmin()
	if err != nil {
		for _, ln := range []net.Listener{metricsLn, statusLn} {
			if ln != nil {
				ln.Close()
			}
		}
		a.Close()
		return withCode(exitcode.Failure, err)
	}
	var serving sync.WaitGroup
	defer func() { cancel(); serving.Wait() }()
	if node != nil {
		done := make(chan struct{})
		defer func() { cancel(); <-done }()
		go func() {
			defer close(done)
			_ = node.Run(ctx, a)
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading policies and reopening the audit log")
				_ = a.Reload()
				if err := a.ReopenAudit(); err != nil {
					log.Error("reopening the audit log", "error", err)
				}
			}
		}
	}()
	// In a cluster the ConfigMap is watched through the API server; the
	// watch of the mounted copy covers the times the API cannot be reached
	// (a reload reads the API's copy whenever it can).
	if f.watch {
		go func() {
			if err := a.WatchPolicies(ctx); err != nil {
				log.Warn("not watching policy files; reload with SIGHUP", "error", err)
			}
		}()
	}
	// Under systemd: ready once enforcing, and the watchdog that ends a
	// stopped agent.
	go a.NotifySystemd(ctx)
	serving.Add(3)
	go func() {
		defer serving.Done()
		if err := a.ServeAdminOn(ctx, adminLn); err != nil {
			log.Error("admin socket", "error", err)
		}
	}()
	go func() {
		defer serving.Done()
		if err := a.ServeMetrics(ctx, metricsLn); err != nil {
			log.Error("metrics endpoint", "error", err)
		}
	}()
	go func() {
		defer serving.Done()
		if err := a.ServeStatusOn(ctx, statusLn); err != nil {
			log.Error("status socket", "error", err)
		}
	}()
	if err := a.Run(ctx); err != nil {
		if errors.Is(err, fanotify.ErrNotSupported) || errors.Is(err, os.ErrPermission) {
			return withCode(exitcode.Unsupported, fmt.Errorf("%w\nfanotify permission events need root (CAP_SYS_ADMIN) and a kernel built with CONFIG_FANOTIFY_ACCESS_PERMISSIONS=y; `drmfilter env` shows what this machine is", err))
		}
		return withCode(exitcode.Failure, err)
	}
	return nil
}

// listen binds the agent's metrics address and status socket (either may
// be disabled: a nil listener).
func listen(a *agent.Agent) (metrics, status net.Listener, err error) {
	if metrics, err = a.ListenMetrics(); err != nil {
		return nil, nil, err
	}
	if status, err = a.ListenStatus(); err != nil {
		if metrics != nil {
			metrics.Close()
		}
		return nil, nil, err
	}
	return metrics, status, nil
}

// clusterNode is the agent's side of a Kubernetes cluster (--kubernetes):
// it serves the policies of the ConfigMap and publishes the node's status.
// run_kubernetes.go has it; a build with -tags nok8s (the agent's
// packages for machines outside Kubernetes) leaves client-go out.
type clusterNode interface {
	Sources() ([]policy.Source, error)
	PodLabels(uid string) (map[string]string, bool)
	Run(ctx context.Context, a *agent.Agent) error
}

// checkClusterFlags refuses the in-cluster flags without --kubernetes.
func checkClusterFlags(f *runFlags, changed func(string) bool) error {
	if f.kubernetes {
		return nil
	}
	for _, name := range []string{"kubeconfig", "node-name", "kube-namespace"} {
		if changed(name) {
			return withCode(exitcode.Usage, fmt.Errorf("--%s needs --kubernetes", name))
		}
	}
	return nil
}

func newStatusCommand(s Streams) *cobra.Command {
	var socket, output, check string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask the running agent for its mode, policy, environment and counters",
		Long: `Ask the running agent, over its root-only status socket, for its mode,
policy, environment and counters. Only an answer from a process running as
root is believed (the kernel's record of who listens on the socket): an
agent's socket that another user took over is reported as such.

With --check it is a health check, for a liveness or readiness probe or a
script: --check live exits 0 when the agent answers, --check ready exits 0
when it also enforces its policies (loaded, filesystems marked); otherwise
it exits 1 and says why. This is the health check to rely on: /healthz and
/readyz on a TCP port that any local user may listen on can be answered by
anyone while the agent is down.`,
		Example: `  sudo drmfilter status
  drmfilter status --check ready --socket /run/drmfilter/status.sock   # exit 0: enforcing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if check != "" && check != "live" && check != "ready" {
				return withCode(exitcode.Usage, fmt.Errorf("--check: %q is not live or ready", check))
			}
			st, err := agent.QueryAgent(cmd.Context(), socket)
			if err != nil {
				if check != "" {
					return withCode(exitcode.Failure, fmt.Errorf("not %s: %w", check, err))
				}
				return withCode(exitcode.Failure, err)
			}
			if check != "" {
				return statusCheck(s, output, check, st)
			}
			if output == "json" {
				return writeJSON(s.Out, st)
			}
			w := s.Out
			fmt.Fprintf(w, "drmfilter %s, pid %d, up %s, ready %v\n", st.Version, st.PID, st.Uptime, st.Ready)
			fmt.Fprintf(w, "mode %s, failure mode %s, backend %s (%s)\n", st.Mode, st.FailureMode, st.Backend, st.BackendReason)
			watched := "files not watched (SIGHUP reloads)"
			if st.Policy.Watched {
				watched = "files watched"
			}
			fmt.Fprintf(w, "policy generation %d, %d rules, %s, loaded %s, %s\n", st.Policy.Generation, st.Policy.Rules, st.Policy.Hash, st.Policy.LoadedAt.Format("2006-01-02 15:04:05"), watched)
			if st.Policy.Error != "" {
				fmt.Fprintf(w, "last policy reload rejected (the policy above stays in force): %s\n", st.Policy.Error)
			}
			if since := st.Policy.ReloadInProgressSince; since != nil {
				stalled := ""
				if st.Policy.ReloadStalled {
					stalled = "; stalled: later reloads wait for it"
				}
				fmt.Fprintf(w, "policy reload in progress since %s (%s)%s\n", since.Format("2006-01-02 15:04:05"), time.Since(*since).Round(time.Second), stalled)
			}
			fmt.Fprintf(w, "environment: hypervisor %s, cloud %s, container %s, nested %v\n", st.Environment.Hypervisor, st.Environment.Cloud, st.Environment.Container, st.Environment.Nested)
			fmt.Fprintf(w, "marked filesystems: %v; indexed files: %d\n", st.Marked, st.IndexedFiles)
			fmt.Fprintf(w, "events %d; audit records written %d, dropped %d; reload failures %d\n", st.Counters["events"], st.AuditWritten, st.AuditDropped, st.ReloadFailure)
			if p := st.Protection; p.Pinned || p.SelfProtect {
				fmt.Fprintf(w, "protection: pinned %v (%s), self-protect %v, kernel locked %v, lockdown %q, modules disabled %v\n", p.Pinned, p.PinPath, p.SelfProtect, p.KernelLocked, p.Lockdown, p.ModulesDisabled)
			}
			for _, sg := range st.Protection.Signs {
				fmt.Fprintf(w, "SIGN %s at %s: %s\n", sg.What, sg.Seen.Format("2006-01-02 15:04:05"), sg.Detail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", config.Default().StatusSocket, "the agent's status socket")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&check, "check", "", "live or ready: exit 0 if the agent answers (live) and enforces its policies (ready), 1 otherwise")
	return cmd
}

// statusCheck reports the agent's answer to `status --check`: one line, or
// the status as JSON, and exit 0 only when the check passes.
func statusCheck(s Streams, output, check string, st agent.Status) error {
	if output == "json" {
		if err := writeJSON(s.Out, st); err != nil {
			return err
		}
	}
	if check == "ready" && !st.Ready {
		return withCode(exitcode.Failure, fmt.Errorf("not ready: drmfilter agent pid %d answers but does not enforce its policies yet (policy generation %d)", st.PID, st.Policy.Generation))
	}
	if output != "json" {
		state := "live"
		if st.Ready {
			state = "ready"
		}
		fmt.Fprintf(s.Out, "%s: drmfilter %s, pid %d, up %s, policy generation %d\n", state, st.Version, st.PID, st.Uptime, st.Policy.Generation)
	}
	return nil
}

// Where `run --demo` mounts its demo filesystem; examples/demo.yaml
// protects its secret/ directory.
const demoDir = "/tmp/drmfilter-demo"

// setupDemo mounts a small tmpfs at demoDir (so that only it is marked),
// fills it and writes the demo policy into it. The returned function
// unmounts it.
func setupDemo(s Streams) (policyPath string, cleanup func(), err error) {
	if err := os.MkdirAll(demoDir, 0o755); err != nil {
		return "", nil, err
	}
	if err := unix.Mount("tmpfs", demoDir, "tmpfs", 0, "size=8m,mode=0755"); err != nil {
		return "", nil, fmt.Errorf("mount the demo tmpfs at %s (run as root): %w", demoDir, err)
	}
	cleanup = func() { _ = unix.Unmount(demoDir, unix.MNT_DETACH) }
	pol, err := examples.FS.ReadFile("demo.yaml")
	if err != nil {
		cleanup()
		return "", nil, err
	}
	files := map[string]string{
		"secret/plan.txt":   "Q3 plan: acquire the competition.\n",
		"public/readme.txt": "Anyone may read this.\n",
		"policy/demo.yaml":  string(pol),
	}
	for name, content := range files {
		p := filepath.Join(demoDir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	fmt.Fprintf(s.Err, `drmfilter demo: %s is protected by examples/demo.yaml. In another terminal try:
  cat  %s/secret/plan.txt     # denied: Operation not permitted
  head %s/secret/plan.txt     # allowed
  cat  %s/public/readme.txt   # not protected
Audit records are printed below. Stop with Ctrl-C.
`, demoDir, demoDir, demoDir, demoDir)
	return filepath.Join(demoDir, "policy", "demo.yaml"), cleanup, nil
}
