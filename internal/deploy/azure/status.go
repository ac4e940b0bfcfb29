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
// view: the "ProvisioningState/<state>[/<exit code>]" status, and the
// StdOut and StdErr substatuses.
func readExtensionView(r *Result, v *armcompute.VirtualMachineExtensionInstanceView) {
	if v == nil {
		r.Result = Failed
		r.Message = "the extension reported no status"
		return
	}
	r.Result = Failed
	r.Message = "the extension reported no provisioning state"
	for _, s := range v.Statuses {
		code := deref(s.Code)
		state, ok := strings.CutPrefix(code, "ProvisioningState/")
		if !ok {
			continue
		}
		state, _, _ = strings.Cut(state, "/")
		switch state {
		case "succeeded":
			r.Result = Succeeded
		case "failed":
			r.Result = Failed
		default:
			r.Result = Failed
			r.Message = "the extension is still " + state
		}
		// "Enable succeeded: \n[stdout]\n…": the first line is the summary.
		if m := strings.TrimSuffix(firstLine(deref(s.Message)), ":"); m != "" {
			r.Message = m
		} else if state == "succeeded" || state == "failed" {
			r.Message = deref(s.DisplayStatus)
		}
		break
	}
	for _, s := range v.Substatuses {
		code := deref(s.Code)
		switch {
		case strings.Contains(code, "/StdOut/"):
			r.Stdout = tail(deref(s.Message))
		case strings.Contains(code, "/StdErr/"):
			r.Stderr = tail(deref(s.Message))
		}
	}
	r.Message = RedactText(r.Message)
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
