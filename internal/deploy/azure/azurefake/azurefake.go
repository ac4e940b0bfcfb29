// Package azurefake is a small Azure for tests of package azure and of
// `drmfilter deploy azure`: Linux (or Windows) VMs and scale sets served by
// armcompute's official fake servers (armcompute/v8/fake) with a fake token
// credential (azcore/fake). It records every call, can answer a call with
// an Azure error, can hold a call until its context ends, and can answer
// with HTTP 429 before the fake server so that azcore's retry policy is
// exercised: the fake servers' own errors are marked non-retriable, so a 429
// from them is never retried.
//
// It imports only test doubles and is imported only by tests.
package azurefake

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8/fake"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
)

// API names as the SDK tags requests (runtime.CtxAPINameKey).
const (
	VMGet             = "VirtualMachinesClient.Get"
	VMExtensionCreate = "VirtualMachineExtensionsClient.BeginCreateOrUpdate"
	VMExtensionGet    = "VirtualMachineExtensionsClient.Get"
	ScaleSetGet       = "VirtualMachineScaleSetsClient.Get"
	ScaleSetExtCreate = "VirtualMachineScaleSetExtensionsClient.BeginCreateOrUpdate"
	UpdateInstances   = "VirtualMachineScaleSetsClient.BeginUpdateInstances"
	ListInstances     = "VirtualMachineScaleSetVMsClient.NewListPager"
	InstanceView      = "VirtualMachineScaleSetVMsClient.GetInstanceView"
)

// Subscription is the subscription ID the fakes answer for.
const Subscription = "00000000-0000-0000-0000-000000000001"

// Outcome is what the extension reports on one machine.
type Outcome struct {
	// Fail makes the extension fail (exit status 1).
	Fail bool
	// FailAtBegin makes the failure arrive in the first response of the
	// long-running operation (so at Begin*), not while polling. VMs only.
	FailAtBegin bool
	// Stdout and Stderr are install.sh's output.
	Stdout, Stderr string
}

// VM is a virtual machine.
type VM struct {
	OSType     armcompute.OperatingSystemTypes
	PowerState string // "running" when empty
	Outcome    Outcome
}

// ScaleSet is a Uniform scale set whose instances are named
// <name>_<id>, IDs 0..Instances-1.
type ScaleSet struct {
	OSType      armcompute.OperatingSystemTypes
	UpgradeMode armcompute.UpgradeMode // Manual when empty
	Instances   int
	// Outcomes by instance ID; an instance not listed succeeds.
	Outcomes map[string]Outcome
}

// ErrorSpec is an Azure error answered instead of the fake's result.
type ErrorSpec struct {
	Status int
	Code   string
}

// Call is one request a fake server handled.
type Call struct {
	// API is the SDK method, for example UpdateInstances.
	API string
	// Target is the VM, scale set or VM/extension the call names.
	Target string
	// Body is the request body decoded by the fake server.
	Body any
	// Expand is the $expand option, if any.
	Expand string
}

// Cloud is one resource group of VMs and scale sets.
type Cloud struct {
	ResourceGroup string
	VMs           map[string]*VM
	ScaleSets     map[string]*ScaleSet
	// Errors answers the calls of an API with an Azure error.
	Errors map[string]ErrorSpec
	// Throttle answers the first N requests of an API with HTTP 429 and
	// Retry-After before they reach the fake server.
	Throttle map[string]int
	// Block holds the Nth call (1-based) of an API until its context ends.
	Block map[string]int
	// Now is the clock of Env.
	Now time.Time
	// ExtensionName is the extension scale set instances report.
	ExtensionName string

	mu       sync.Mutex
	calls    []Call
	counts   map[string]int
	attempts map[string]int
}

// New returns an empty resource group named "prod".
func New() *Cloud {
	return &Cloud{
		ResourceGroup: "prod",
		VMs:           map[string]*VM{},
		ScaleSets:     map[string]*ScaleSet{},
		Errors:        map[string]ErrorSpec{},
		Throttle:      map[string]int{},
		Block:         map[string]int{},
		Now:           time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC),
		ExtensionName: azure.DefaultExtensionName,
	}
}

// Calls returns the calls the fake servers handled, in order.
func (c *Cloud) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// CallsTo returns the calls of one API.
func (c *Cloud) CallsTo(api string) []Call {
	var out []Call
	for _, call := range c.Calls() {
		if call.API == api {
			out = append(out, call)
		}
	}
	return out
}

// Mutations returns the calls that change state (every Begin*).
func (c *Cloud) Mutations() []Call {
	var out []Call
	for _, call := range c.Calls() {
		if strings.Contains(call.API, ".Begin") {
			out = append(out, call)
		}
	}
	return out
}

// Attempts returns how many HTTP requests of an API reached the transport,
// throttled ones included.
func (c *Cloud) Attempts(api string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[api]
}

// Env is an azure.Env wired to this cloud: fake credential, fake
// transport, retries and polls a millisecond apart, a fixed clock.
func (c *Cloud) Env() azure.Env {
	return azure.Env{
		Credential: &azfake.TokenCredential{},
		ClientOptions: &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: &throttler{c: c, next: fake.NewServerFactoryTransport(c.servers())},
			Retry:     policy.RetryOptions{MaxRetries: 3, RetryDelay: time.Millisecond, MaxRetryDelay: 50 * time.Millisecond},
		}},
		PollFrequency: time.Millisecond,
		Now:           func() time.Time { return c.Now },
	}
}

// throttler answers HTTP 429 before the fake server, as ARM does when a
// subscription's request budget is spent.
type throttler struct {
	c    *Cloud
	next policy.Transporter
}

func (t *throttler) Do(req *http.Request) (*http.Response, error) {
	api, _ := req.Context().Value(azruntime.CtxAPINameKey{}).(string)
	t.c.mu.Lock()
	if t.c.attempts == nil {
		t.c.attempts = map[string]int{}
	}
	t.c.attempts[api]++
	throttle := t.c.Throttle[api] > 0
	if throttle {
		t.c.Throttle[api]--
	}
	t.c.mu.Unlock()
	if !throttle {
		return t.next.Do(req)
	}
	h := http.Header{}
	h.Set("Retry-After", "1")
	h.Set("Retry-After-Ms", "1") // azcore prefers the millisecond form
	h.Set("x-ms-error-code", "TooManyRequests")
	h.Set("Content-Type", "application/json")
	body := `{"error":{"code":"TooManyRequests","message":"The request is being throttled."}}`
	return &http.Response{
		StatusCode:    http.StatusTooManyRequests,
		Status:        "429 Too Many Requests",
		Header:        h,
		Body:          io.NopCloser(strings.NewReader(body)),
		Request:       req,
		ContentLength: int64(len(body)),
	}, nil
}

// enter records a call and applies Errors and Block; a non-nil error
// spec means answer with it.
func (c *Cloud) enter(ctx context.Context, call Call) *ErrorSpec {
	c.mu.Lock()
	c.calls = append(c.calls, call)
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[call.API]++
	n := c.counts[call.API]
	block := c.Block[call.API] == n
	spec, failing := c.Errors[call.API]
	c.mu.Unlock()
	if block {
		<-ctx.Done()
	}
	if failing {
		return &spec
	}
	return nil
}

func (c *Cloud) id(kind, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/%s/%s", Subscription, c.ResourceGroup, kind, name)
}

func notFound(e *azfake.ErrorResponder) {
	e.SetResponseError(http.StatusNotFound, "ResourceNotFound")
}

func (c *Cloud) servers() *fake.ServerFactory {
	return &fake.ServerFactory{
		VirtualMachinesServer:                  c.vmServer(),
		VirtualMachineExtensionsServer:         c.vmExtensionServer(),
		VirtualMachineScaleSetsServer:          c.scaleSetServer(),
		VirtualMachineScaleSetExtensionsServer: c.scaleSetExtensionServer(),
		VirtualMachineScaleSetVMsServer:        c.scaleSetVMServer(),
	}
}

// extensionView is the Linux Custom Script extension's instance view for
// an outcome, in the format the extension reports: one status whose
// message carries the script's output.
func extensionView(name string, o Outcome) *armcompute.VirtualMachineExtensionInstanceView {
	code, display, msg := "ProvisioningState/succeeded", "Provisioning succeeded", "Enable succeeded: "
	if o.Fail {
		code, display, msg = "ProvisioningState/failed/1", "Provisioning failed", "Enable failed: failed to execute command: command terminated with exit status=1"
	}
	return &armcompute.VirtualMachineExtensionInstanceView{
		Name:               to.Ptr(name),
		Type:               to.Ptr("Microsoft.Azure.Extensions.CustomScript"),
		TypeHandlerVersion: to.Ptr("2.1.10"),
		Statuses: []*armcompute.InstanceViewStatus{{
			Code:          to.Ptr(code),
			Level:         to.Ptr(armcompute.StatusLevelTypesInfo),
			DisplayStatus: to.Ptr(display),
			Message:       to.Ptr(msg + "\n[stdout]\n" + o.Stdout + "\n[stderr]\n" + o.Stderr),
		}},
	}
}

func instanceNumber(id string) int {
	n, _ := strconv.Atoi(id)
	return n
}
