package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
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
	auditFile   string
	auditStdout bool
	metrics     string
	status      string
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
	fl.StringVar(&f.failureMode, "failure-mode", "", "open or closed: the answer when a decision misses its deadline or fails")
	fl.StringVar(&f.auditFile, "audit-file", "", "audit log file (JSON lines); \"-\" disables the file")
	fl.BoolVar(&f.auditStdout, "audit-stdout", false, "also write audit records to standard output")
	fl.StringVar(&f.metrics, "metrics-address", "", "host:port for /metrics, /healthz, /readyz (default loopback; another address exposes them to its network); \"-\" disables")
	fl.StringVar(&f.status, "status-socket", "", "unix socket for `drmfilter status`")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.BoolVar(&f.watch, "watch", true, "reload when policy files change")
	fl.DurationVar(&f.deadline, "deadline", 0, "per-event decision deadline (default: tuned to the environment)")
	fl.IntVar(&f.workers, "workers", 0, "goroutines deciding covered events (default: tuned)")
	fl.DurationVar(&f.spin, "spin", 0, "how long the reader polls for the next event before sleeping (default: tuned; negative: never)")
	fl.IntVar(&f.queueSize, "queue-size", 0, "covered events waiting for a worker before the failure mode answers (default: tuned)")
	fl.StringVar(&f.hostRoot, "host-root", "", "where the host's / is seen (/host in a pod; default /)")
	fl.StringSliceVar(&f.criEndpoint, "cri-endpoint", nil, "container runtime (CRI) socket for pod identity, as this process sees it (/host/run/... in a pod; repeatable; default: discover the well-known ones under --host-root)")
	fl.BoolVar(&f.kubernetes, "kubernetes", false, "run in a Kubernetes cluster: policies from the ConfigMap, node status in a Lease")
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
			cfg.StatusSocket = filepath.Join(os.TempDir(), "drmfilter-demo.sock")
		}
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
	opts := agent.Options{Config: cfg, Logger: log, Stdout: s.Out}
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
	go func() {
		if err := a.ServeMetrics(ctx); err != nil {
			log.Error("metrics endpoint", "error", err)
		}
	}()
	go func() {
		if err := a.ServeStatus(ctx); err != nil {
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
	var socket, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask the running agent for its mode, policy, environment and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			st, err := agent.QueryStatus(cmd.Context(), socket)
			if err != nil {
				return withCode(exitcode.Failure, err)
			}
			if output == "json" {
				return writeJSON(s.Out, st)
			}
			w := s.Out
			fmt.Fprintf(w, "drmfilter %s, pid %d, up %s, ready %v\n", st.Version, st.PID, st.Uptime, st.Ready)
			fmt.Fprintf(w, "mode %s, failure mode %s\n", st.Mode, st.FailureMode)
			watched := "files not watched (SIGHUP reloads)"
			if st.Policy.Watched {
				watched = "files watched"
			}
			fmt.Fprintf(w, "policy generation %d, %d rules, %s, loaded %s, %s\n", st.Policy.Generation, st.Policy.Rules, st.Policy.Hash, st.Policy.LoadedAt.Format("2006-01-02 15:04:05"), watched)
			fmt.Fprintf(w, "environment: hypervisor %s, cloud %s, container %s, nested %v\n", st.Environment.Hypervisor, st.Environment.Cloud, st.Environment.Container, st.Environment.Nested)
			fmt.Fprintf(w, "marked filesystems: %v; indexed files: %d\n", st.Marked, st.IndexedFiles)
			fmt.Fprintf(w, "events %d; audit records written %d, dropped %d; reload failures %d\n", st.Counters["events"], st.AuditWritten, st.AuditDropped, st.ReloadFailure)
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", config.Default().StatusSocket, "the agent's status socket")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
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
