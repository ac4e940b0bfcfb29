package azure

import (
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// What happened on one machine.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
	TimedOut  = "timed out"
	// NotStarted: the rollout stopped (failure threshold, timeout) before
	// this machine's batch.
	NotStarted = "not started"
	// SucceededBefore: a resumed rollout found this instance already done
	// with the same package.
	SucceededBefore = "succeeded earlier"
)

// outputTail is how much of the extension's stdout and stderr is kept.
const outputTail = 4096

// Result is the outcome on one machine.
type Result struct {
	// InstanceID is the scale set instance ID (empty for a VM).
	InstanceID string `json:"instanceId,omitempty"`
	// Name is the VM's or the instance's name.
	Name string `json:"name"`
	// Result is one of Succeeded, Failed, TimedOut, NotStarted,
	// SucceededBefore.
	Result string `json:"result"`
	// Message is the extension's status message or Azure's error.
	Message string `json:"message,omitempty"`
	// Stdout and Stderr are the tails of install.sh's output as the
	// extension reported them.
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// OK reports whether the machine has the package installed.
func (r Result) OK() bool { return r.Result == Succeeded || r.Result == SucceededBefore }

// Tail is the message column of a table: the last line of stderr for a
// failure that printed one, else the message, cut to fit.
func (r Result) Tail() string {
	s := r.Message
	if !r.OK() {
		if last := lastLine(r.Stderr); last != "" {
			s = last
		}
	}
	const width = 100
	if len(s) > width {
		s = "…" + s[len(s)-width+1:]
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n "), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// readExtensionView fills r from the Custom Script extension's instance
// view. The Linux extension reports one status, code
// "ProvisioningState/<state>[/<exit code>]", whose message is a summary
// followed by the script's output:
//
//	Enable succeeded: \n[stdout]\n<stdout>\n[stderr]\n<stderr>
func readExtensionView(r *Result, v *armcompute.VirtualMachineExtensionInstanceView) {
	r.Result = Failed
	if v == nil {
		r.Message = "the extension reported no status"
		return
	}
	r.Message = "the extension reported no provisioning state"
	for _, s := range v.Statuses {
		state, ok := strings.CutPrefix(deref(s.Code), "ProvisioningState/")
		if !ok {
			continue
		}
		state, _, _ = strings.Cut(state, "/")
		if state == "succeeded" {
			r.Result = Succeeded
		}
		summary, stdout, stderr := splitOutput(deref(s.Message))
		r.Stdout, r.Stderr = tail(stdout), tail(stderr)
		switch {
		case state != "succeeded" && state != "failed":
			r.Message = "the extension is still " + state
		case summary != "":
			r.Message = summary
		default:
			r.Message = deref(s.DisplayStatus)
		}
		break
	}
	r.Message = RedactText(r.Message)
}

// splitOutput cuts the extension's status message into its summary line
// ("Enable succeeded", without the colon), stdout and stderr.
func splitOutput(msg string) (summary, stdout, stderr string) {
	summary, rest, ok := strings.Cut(msg, "\n[stdout]\n")
	if ok {
		stdout, stderr, _ = strings.Cut(rest, "\n[stderr]\n")
	}
	summary = strings.TrimSuffix(strings.TrimSpace(firstLine(summary)), ":")
	return summary, stdout, stderr
}

// findExtensionView picks the named extension out of an instance view's
// list.
func findExtensionView(views []*armcompute.VirtualMachineExtensionInstanceView, name string) *armcompute.VirtualMachineExtensionInstanceView {
	for _, v := range views {
		if v != nil && strings.EqualFold(deref(v.Name), name) {
			return v
		}
	}
	return nil
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(first)
}

func tail(s string) string {
	s = RedactText(strings.TrimRight(s, "\n"))
	if len(s) > outputTail {
		s = "…" + s[len(s)-outputTail:]
	}
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
