package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drmfilter/drmfilter/internal/policy"
)

// Label values are fixed sets, initialised at start, so every series
// exists from the first scrape; paths and pids are never labels.
var (
	opNames = [...]policy.Operation{policy.OpOpen, policy.OpExec, policy.OpRead, policy.OpWrite,
		policy.OpDelete, policy.OpRename, policy.OpLink, policy.OpTruncate, policy.OpSetattr}
	decisionNames = []string{"uncovered", "allow", "audit", "would-deny", "deny"}
	failureNames  = []string{"deadline", "queue-full", "internal-error", "malformed-event", "process-lookup", "unnamed-file"}
)

// stats are the agent's counters: plain atomics on the event path, read by
// the Prometheus collector and the status socket.
type stats struct {
	total, self, overflows, indexHits, ignoreMarks, exempt, late atomic.Uint64
	respondErrors, reloadFailures, mountChanges, tamper, signs   atomic.Uint64
	events                                                       [len(opNames)][5]atomic.Uint64
	fails                                                        [6]atomic.Uint64
	// failAllows counts, by failure reason, the events a failure path
	// answered with allow: what got through without a decision.
	failAllows [6]atomic.Uint64
	// grantAllows counts the exec's own open allowed by its exec's grant,
	// without a decision of its own.
	grantAllows atomic.Uint64
	// openBeforeStart counts the protected files found open by a process
	// when the agent started; openBeforeStartDenied those of them the
	// policy would have denied.
	openBeforeStart, openBeforeStartDenied atomic.Uint64
	latency                                prometheus.Histogram
}

func newStats() *stats {
	return &stats{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "drmfilter_decision_seconds",
		Help:    "Time from reading a covered event to answering it.",
		Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 0.5, 2},
	})}
}

// opIndex is op's row in stats.events: an operation set (an open for
// writing is open|write) counts once, as the first of opNames it holds.
func opIndex(op policy.Operation) int {
	for i, o := range opNames {
		if op&o != 0 {
			return i
		}
	}
	return 0
}

func (s *stats) record(op policy.Operation, decision string) {
	for i, d := range decisionNames {
		if d == decision {
			s.events[opIndex(op)][i].Add(1)
			return
		}
	}
}

// failed counts a failure of the given reason, and whether it allowed.
func (s *stats) failed(reason string, allowed bool) {
	i := slices.Index(failureNames, reason)
	if i < 0 {
		i = slices.Index(failureNames, "internal-error")
	}
	s.fails[i].Add(1)
	if allowed {
		s.failAllows[i].Add(1)
	}
}

func (s *stats) observe(d time.Duration) { s.latency.Observe(d.Seconds()) }

// collector exposes the agent's state to Prometheus.
type collector struct{ a *Agent }

var (
	descEvents      = prometheus.NewDesc("drmfilter_events_total", "Permission events decided, by operation and decision (uncovered: no policy covers the file).", []string{"operation", "decision"}, nil)
	descFailures    = prometheus.NewDesc("drmfilter_failures_total", "Events answered by a failure path, by reason (deadline: not decided within the per-event deadline) and the verdict given (allow: let through without a decision).", []string{"reason", "verdict"}, nil)
	descOverflows   = prometheus.NewDesc("drmfilter_queue_overflows_total", "Kernel queue overflows; the kernel allowed the events it could not queue.", nil, nil)
	descTamper      = prometheus.NewDesc("drmfilter_tamper_refused_total", "Attempts on the agent itself (signals, ptrace, its BPF objects, its pins) that the bpf backend's programs refused.", nil, nil)
	descSigns       = prometheus.NewDesc("drmfilter_tamper_signs_total", "Signs that root got around the programs where they could not refuse it: a boot without BPF LSM, pinned programs removed with no authorized stop, a kernel module loaded.", nil, nil)
	descCache       = prometheus.NewDesc("drmfilter_cache_total", "Cache activity: ignore marks placed in the kernel, identity-index hits, hypervisor exemptions.", []string{"kind"}, nil)
	descDropped     = prometheus.NewDesc("drmfilter_audit_dropped_total", "Audit records dropped because the writer could not keep up.", nil, nil)
	descGeneration  = prometheus.NewDesc("drmfilter_policy_generation", "Generation of the policy in force, with its hash as a label.", []string{"hash"}, nil)
	descReloadFails = prometheus.NewDesc("drmfilter_policy_reload_failures_total", "Policy reloads rejected (the previous policy stayed in force).", nil, nil)
	descIndexed     = prometheus.NewDesc("drmfilter_indexed_files", "Protected files in the identity index.", nil, nil)
	descBackend     = prometheus.NewDesc("drmfilter_backend_info", "What enforces (bpf or fanotify), always 1; the reason for the choice is in drmfilter status and the start-up log.", []string{"backend"}, nil)
	descBPF         = prometheus.NewDesc("drmfilter_bpf_decisions_total", "bpf backend: operations on covered files decided in the kernel, by outcome (lost: events the ring buffer had no room for; their decisions stood, their records are missing).", []string{"outcome"}, nil)
	descLate        = prometheus.NewDesc("drmfilter_late_decisions_total", "Decisions finished after the deadline had answered the event.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEvents, descFailures, descOverflows, descTamper, descSigns, descCache, descDropped, descGeneration, descReloadFails, descIndexed, descLate, descBackend, descBPF} {
		ch <- d
	}
	c.a.stats.latency.Describe(ch)
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.a.stats
	for i, op := range opNames {
		for j, d := range decisionNames {
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(s.events[i][j].Load()), op.String(), d)
		}
	}
	for i, r := range failureNames {
		allowed := s.failAllows[i].Load()
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(allowed), r, "allow")
		ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(s.fails[i].Load()-allowed), r, "deny")
	}
	ch <- prometheus.MustNewConstMetric(descOverflows, prometheus.CounterValue, float64(s.overflows.Load()))
	ch <- prometheus.MustNewConstMetric(descTamper, prometheus.CounterValue, float64(s.tamper.Load()))
	ch <- prometheus.MustNewConstMetric(descSigns, prometheus.CounterValue, float64(s.signs.Load()))
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.CounterValue, float64(s.ignoreMarks.Load()), "ignore-mark")
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.CounterValue, float64(s.indexHits.Load()), "index-hit")
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.CounterValue, float64(s.exempt.Load()), "exemption")
	ch <- prometheus.MustNewConstMetric(descCache, prometheus.CounterValue, float64(s.grantAllows.Load()), "exec-grant")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.a.audit.Dropped()))
	st := c.a.state.Load()
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(st.gen), st.hash)
	ch <- prometheus.MustNewConstMetric(descReloadFails, prometheus.CounterValue, float64(s.reloadFailures.Load()))
	ch <- prometheus.MustNewConstMetric(descIndexed, prometheus.GaugeValue, float64(c.a.index.len()))
	ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(s.late.Load()))
	ch <- prometheus.MustNewConstMetric(descBackend, prometheus.GaugeValue, 1, c.a.backend)
	if b := c.a.bpf.Load(); b != nil {
		if bc, err := b.Counters(); err == nil {
			for _, o := range []struct {
				name string
				n    uint64
			}{{"covered", bc.Covered}, {"denied", bc.Denied}, {"would-deny", bc.WouldDeny}, {"lost", bc.Lost}} {
				ch <- prometheus.MustNewConstMetric(descBPF, prometheus.CounterValue, float64(o.n), o.name)
			}
		}
	}
	c.a.stats.latency.Collect(ch)
}

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (policies loaded and filesystems marked). ServeMetrics leaves /healthz
// and /readyz out on a port that any local user may listen on.
func (a *Agent) Handler() http.Handler { return a.metricsHandler("") }

// metricsHandler is Handler; a non-empty noHealth is why /healthz and
// /readyz are not served, which they answer with 404.
func (a *Agent) metricsHandler(noHealth string) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{a})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if noHealth != "" {
		notHere := func(w http.ResponseWriter, _ *http.Request) { http.Error(w, noHealth, http.StatusNotFound) }
		mux.HandleFunc("/healthz", notHere)
		mux.HandleFunc("/readyz", notHere)
		return mux
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready: policies not enforced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}

// ListenMetrics binds the metrics address (Config.MetricsAddress), or
// returns a nil listener when it is "" (disabled, the default). Call it
// before Run and do not start when it fails: an agent running without its
// endpoint would leave the address to whoever listens there next, and that
// process would answer for the agent.
//
// The default is off, rather than a fixed port, because a TCP port at or
// above net.ipv4.ip_unprivileged_port_start can be bound by any local
// user whenever the agent does not hold it (before it starts, while it
// restarts). With a fixed default that user could both answer in the
// agent's place and, as a failed bind stops the agent, keep the agent from
// starting at all. An explicitly configured address is the operator's
// choice: it is bound, or the agent does not start. On such a port
// ServeMetrics serves /metrics only, as an answer there proves nothing
// about who gave it; the health check that cannot be impersonated is the
// status socket (QueryAgent, `drmfilter status --check ready`).
func (a *Agent) ListenMetrics() (net.Listener, error) {
	addr := a.cfg.MetricsAddress
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("metrics address %s is already in use by another process (%w): the agent does not start, as that process would answer for it; stop it, or set --metrics-address (metricsAddress in the config file) to a free address or \"-\" to disable the endpoint", addr, err)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("metrics address %s: %w: ports below %d need root (CAP_NET_BIND_SERVICE); set --metrics-address (metricsAddress in the config file) to another address or \"-\" to disable the endpoint", addr, err, unprivilegedPortStart())
	default:
		return nil, fmt.Errorf("metrics address %s: %w; set --metrics-address (metricsAddress in the config file) to another address or \"-\" to disable the endpoint", addr, err)
	}
}

// ServeMetrics serves /metrics on ln (from ListenMetrics; nil serves
// nothing) until ctx is done, and closes ln. /healthz and /readyz are
// served too only when ln's port is below
// net.ipv4.ip_unprivileged_port_start in the agent's network namespace,
// so that only root can listen there.
func (a *Agent) ServeMetrics(ctx context.Context, ln net.Listener) error {
	if ln == nil {
		return nil
	}
	var noHealth string
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		if start := unprivilegedPortStart(); tcp.Port >= start {
			noHealth = fmt.Sprintf("not served on port %d: any local user may listen on ports from %d (net.ipv4.ip_unprivileged_port_start), "+
				"so an answer here could come from anyone; ask the agent with `drmfilter status --check ready` (its root-only status socket)\n", tcp.Port, start)
		}
	}
	a.log.Info("serving metrics", "address", ln.Addr().String(), "health", noHealth == "")
	srv := &http.Server{Handler: a.metricsHandler(noHealth), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// unprivilegedPortStart is the lowest port any user may listen on in this
// process's network namespace (net.ipv4.ip_unprivileged_port_start, which
// covers IPv6 too). Without the setting (Linux before 4.11) it is 1024.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}
