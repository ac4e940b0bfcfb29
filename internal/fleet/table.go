package fleet

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/drmfilter/drmfilter/internal/kubeschema"
)

// WriteTable prints one row per node, notes on the rows (policy errors,
// unreadable statuses) and the summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPOD\tPHASE\tREADY\tVERSION\tENVIRONMENT\tPOLICY\tMODE\tRESTARTS\tAGE")
	var notes []string
	marked := false
	for _, n := range r.Nodes {
		node, pod, phase, ready, restarts := orDash(n.Node), orDash(n.Pod), orDash(n.Phase), "-", "-"
		if n.Node == "" {
			node = "(unscheduled)"
		}
		if n.Pod != "" {
			ready, restarts = yesNo(n.Ready), fmt.Sprint(n.Restarts)
		}
		version, env, pol, mode := "-", "-", "-", "-"
		if st := n.Status; st != nil {
			version, mode = orDash(st.AgentVersion), orDash(st.Mode)
			env = orDash(st.Hypervisor) + "/" + orDash(st.Cloud)
			pol = orDash(kubeschema.ShortHash(st.PolicyHash))
			if st.PolicyHash != "" && r.DesiredPolicyHash != "" && !n.PolicyCurrent {
				pol += "*"
				marked = true
			}
			if st.PolicyError != "" {
				pol += " (error)"
				notes = append(notes, fmt.Sprintf("%s: policy rejected, the previous one stays in force: %s", node, firstLine(st.PolicyError)))
			}
		}
		if n.StatusError != "" {
			notes = append(notes, fmt.Sprintf("%s: unreadable status: %s", node, n.StatusError))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", node, pod, phase, ready, version, env, pol, mode, restarts, r.age(n))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if marked {
		fmt.Fprintf(w, "* not the desired policy %s\n", kubeschema.ShortHash(r.DesiredPolicyHash))
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	_, err := fmt.Fprintln(w, r.Line())
	return err
}

// age is the AGE column: how old the node's status is, and whether it is
// stale.
func (r *Report) age(n Node) string {
	if n.RenewTime == nil {
		if n.Status == nil && n.StatusError == "" {
			return "no status"
		}
		return "stale"
	}
	a := duration.HumanDuration(r.Time.Sub(*n.RenewTime))
	if n.Stale {
		return a + " (stale)"
	}
	return a
}

// Line is the summary line, such as
// "policy a1b2c3d4e5f6 on 47/50 nodes; 2 not ready; 1 stale; 1 policy error".
func (r *Report) Line() string {
	s := r.Summary
	if s.Nodes == 0 {
		return fmt.Sprintf("no drmfilter agents in namespace %s", r.Namespace)
	}
	var parts []string
	if r.DesiredPolicyHash == "" {
		parts = append(parts, fmt.Sprintf("desired policy unknown (no %s annotation on ConfigMap %s); %d nodes", kubeschema.AnnotationPolicyHash, kubeschema.PolicyConfigMap, s.Nodes))
	} else {
		parts = append(parts, fmt.Sprintf("policy %s on %d/%d nodes", kubeschema.ShortHash(r.DesiredPolicyHash), s.PolicyCurrent, s.Nodes))
	}
	count := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	count(s.NotReady, "not ready", "not ready")
	count(s.Stale, "stale", "stale")
	count(s.PolicyErrors, "policy error", "policy errors")
	count(s.WithoutStatus, "without status", "without status")
	count(s.WithoutPod, "without agent pod", "without agent pod")
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}
