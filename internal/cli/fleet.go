//go:build !nodeploy

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/fleet"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/progress"
)

type fleetStatusFlags struct {
	client    kubernetes.ClientOptions
	namespace string
	output    string
	watch     bool
	wait      bool
	timeout   time.Duration
}

func newFleetStatusCommand(s Streams) *cobra.Command {
	return newFleetStatusCommandWith(s, kubernetes.NewClient)
}

// newFleetStatusCommandWith builds the command on a given client maker
// (tests pass a fake clientset).
func newFleetStatusCommandWith(s Streams, connect func(kubernetes.ClientOptions) (clientset.Interface, error)) *cobra.Command {
	var f fleetStatusFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every node's agent: pod, readiness, version, environment and policy",
		Long: `Show the drmfilter agents of a Kubernetes cluster, one row per node: the
DaemonSet's pods joined with the status each agent publishes in its node's
Lease (drmfilter-node-<node>), against the desired policy (the policy-hash
annotation of the drmfilter-policies ConfigMap).

Columns:
  NODE, POD, PHASE, READY  the agent's pod (READY is the kubelet's readiness)
  VERSION, MODE            the agent's version and mode (enforce or audit)
  ENVIRONMENT              hypervisor/cloud the agent detected on its node
  POLICY                   the loaded policy hash (12 digits); * when it is not
                           the desired one, (error) when the agent rejected the
                           newest policy and kept the previous one
  RESTARTS                 container restarts of the pod
  AGE                      time since the agent last published; (stale) once
                           that is longer than the Lease's duration (90s)
A node with a status Lease but no agent pod, and a pod that has not
published yet ("no status"), are shown too. The last line sums up, for
example "policy a1b2c3d4e5f6 on 47/50 nodes; 2 not ready; 1 stale".

--watch prints again whenever something changes (Ctrl-C stops). --wait
waits until at least one agent pod is ready and every ready one reports the
desired policy (exit 0), or --timeout passes (exit 1, naming the nodes that
lag); it shows a progress bar on a terminal and one line per change
otherwise, on standard error, and the table at the end. Pods that are not
ready are left out of --wait: 'kubectl rollout status' covers them.

Reading needs get and list on the namespace's pods, leases, configmaps and
daemonsets (and watch with --watch or --wait).

-o json prints this object (one per change with --watch); fields are only
ever added:
  {"namespace": "drmfilter", "desiredPolicyHash": "sha256:...", "time": RFC 3339,
   "nodes": [{"node", "pod", "phase", "ready": bool, "restarts": int,
              "status": {"node", "pod", "agentVersion", "ready", "mode",
                         "policyHash", "policyGeneration", "policySource",
                         "policyError", "hypervisor", "cloud",
                         "containerRuntime", "nested", "updatedAt"},
              "statusError", "renewTime", "stale": bool, "policyCurrent": bool}],
   "summary": {"nodes", "policyCurrent", "notReady", "stale", "policyErrors",
               "withoutStatus", "withoutPod"}}
"status" is absent when the agent has published nothing, "pod" when the
node has no agent pod.`,
		Example: `  drmfilter fleet status
  drmfilter fleet status -o json | jq '.nodes[] | select(.stale)'
  drmfilter deploy kubernetes --policy policies/ && drmfilter fleet status --wait --timeout 2m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fleetStatus(cmd.Context(), s, &f, connect)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.client.Kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&f.client.Context, "context", "", "kubeconfig context (default the current one)")
	fl.StringVarP(&f.namespace, "namespace", "n", kubeschema.DefaultNamespace, "namespace drmfilter is deployed in")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	fl.BoolVarP(&f.watch, "watch", "w", false, "print again whenever something changes")
	fl.BoolVar(&f.wait, "wait", false, "wait until every ready agent reports the desired policy")
	fl.DurationVar(&f.timeout, "timeout", 5*time.Minute, "with --wait: how long to wait")
	return cmd
}

func fleetStatus(ctx context.Context, s Streams, f *fleetStatusFlags, connect func(kubernetes.ClientOptions) (clientset.Interface, error)) error {
	if f.output != "table" && f.output != "json" {
		return withCode(exitcode.Usage, fmt.Errorf("unknown output format %q (want table or json)", f.output))
	}
	if f.watch && f.wait {
		return withCode(exitcode.Usage, errors.New("--watch and --wait exclude each other"))
	}
	if f.timeout <= 0 {
		return withCode(exitcode.Usage, fmt.Errorf("--timeout %s must be positive", f.timeout))
	}
	c, err := connect(f.client)
	if err != nil {
		return withCode(exitcode.Failure, err)
	}
	show := func(r *fleet.Report) error {
		if f.output == "json" {
			return writeJSON(s.Out, r)
		}
		return r.WriteTable(s.Out)
	}
	switch {
	case f.wait:
		return fleetWait(ctx, s, f, c, show)
	case f.watch:
		first := true
		var perr error
		err := fleet.Watch(ctx, c, f.namespace, fleet.WatchOptions{}, func(r *fleet.Report) bool {
			if !first && f.output == "table" {
				fmt.Fprintln(s.Out)
			}
			first = false
			perr = show(r)
			return perr != nil
		})
		if perr != nil {
			return withCode(exitcode.Failure, perr)
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return withCode(exitcode.Failure, err)
		}
		return nil
	}
	snap, err := fleet.Fetch(ctx, c, f.namespace)
	if err != nil {
		return withCode(exitcode.Failure, err)
	}
	if err := show(fleet.Build(snap, time.Now())); err != nil {
		return withCode(exitcode.Failure, err)
	}
	return nil
}

// fleetWait follows the fleet until it converges on the desired policy or
// the timeout passes, reporting progress on standard error.
func fleetWait(ctx context.Context, s Streams, f *fleetStatusFlags, c clientset.Interface, show func(*fleet.Report) error) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	w := waitProgress{w: s.Err}
	var last *fleet.Report
	err := fleet.Watch(ctx, c, f.namespace, fleet.WatchOptions{}, func(r *fleet.Report) bool {
		last = r
		w.update(r)
		return r.Converged()
	})
	w.done()
	if last != nil {
		if perr := show(last); perr != nil {
			return withCode(exitcode.Failure, perr)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && last != nil:
		return withCode(exitcode.Failure, fmt.Errorf("timed out after %s: %s", f.timeout, lagging(last)))
	default:
		return withCode(exitcode.Failure, err)
	}
}

// lagging says why a report has not converged.
func lagging(r *fleet.Report) string {
	if r.DesiredPolicyHash == "" {
		return fmt.Sprintf("the desired policy is unknown: ConfigMap %s/%s is missing or has no %s annotation (deploy with 'drmfilter deploy kubernetes')",
			r.Namespace, kubeschema.PolicyConfigMap, kubeschema.AnnotationPolicyHash)
	}
	lag := r.Lagging()
	if len(lag) == 0 {
		return "no agent is ready"
	}
	var names []string
	for _, n := range lag {
		why := "no status"
		switch {
		case n.Status != nil && n.Status.PolicyError != "":
			why = "policy " + orNone(kubeschema.ShortHash(n.Status.PolicyHash)) + ", rejected the newest: " + firstErrorLine(n.Status.PolicyError)
		case n.Status != nil:
			why = "policy " + orNone(kubeschema.ShortHash(n.Status.PolicyHash))
		case n.StatusError != "":
			why = n.StatusError
		}
		names = append(names, fmt.Sprintf("%s (%s)", n.Node, why))
	}
	return fmt.Sprintf("%d ready agents do not report the desired policy %s: %s", len(lag), kubeschema.ShortHash(r.DesiredPolicyHash), strings.Join(names, ", "))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func firstErrorLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// waitProgress reports how many ready agents have the desired policy.
type waitProgress struct {
	w       io.Writer
	rep     *progress.Reporter
	total   int
	desired string
	current map[string]bool
}

func (p *waitProgress) update(r *fleet.Report) {
	ready := 0
	for _, n := range r.Nodes {
		if n.Pod != "" && n.Ready {
			ready++
		}
	}
	if p.rep == nil || ready != p.total || r.DesiredPolicyHash != p.desired {
		p.done()
		p.total, p.desired, p.current = ready, r.DesiredPolicyHash, map[string]bool{}
		p.rep = progress.New(p.w, ready, "ready agents on policy "+orNone(kubeschema.ShortHash(r.DesiredPolicyHash)))
	}
	done := 0
	var msgs []string
	for _, n := range r.Nodes {
		if n.Pod == "" || !n.Ready || !n.PolicyCurrent {
			continue
		}
		done++
		if !p.current[n.Node] {
			p.current[n.Node] = true
			msgs = append(msgs, n.Node)
		}
	}
	msg := ""
	if len(msgs) > 0 {
		msg = strings.Join(msgs, ", ") + " on the desired policy"
	}
	p.rep.Set(done, msg)
}

func (p *waitProgress) done() {
	if p.rep != nil {
		p.rep.Done()
	}
}
