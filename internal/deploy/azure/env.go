package azure

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// DefaultPollFrequency is how often a long-running operation is polled when
// Azure does not say (azcore's own default is 30 s).
const DefaultPollFrequency = 10 * time.Second

// Env is how the package reaches Azure. The zero value is production:
// DefaultAzureCredential (environment, workload identity, managed identity,
// Azure CLI), the public cloud, azcore's retry policy.
type Env struct {
	// Credential replaces DefaultAzureCredential when set.
	Credential azcore.TokenCredential
	// ClientOptions are passed to every armcompute client: the transport
	// (tests wire armcompute/v8/fake here), retry and cloud settings.
	ClientOptions *arm.ClientOptions
	// PollFrequency is the interval between polls of a long-running
	// operation; zero means DefaultPollFrequency.
	PollFrequency time.Duration
	// Now is the clock used for forceUpdateTag and the state file; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives diagnostic logs; nil discards them. Secrets are never
	// logged.
	Logger *slog.Logger
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e Env) pollFrequency() time.Duration {
	if e.PollFrequency > 0 {
		return e.PollFrequency
	}
	return DefaultPollFrequency
}

func (e Env) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// clients are the armcompute clients of one subscription.
type clients struct {
	vms          *armcompute.VirtualMachinesClient
	vmExtensions *armcompute.VirtualMachineExtensionsClient
	scaleSets    *armcompute.VirtualMachineScaleSetsClient
	ssExtensions *armcompute.VirtualMachineScaleSetExtensionsClient
	ssVMs        *armcompute.VirtualMachineScaleSetVMsClient
}

func (e Env) clients(subscription string) (*clients, error) {
	if subscription == "" {
		return nil, fmt.Errorf("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
	}
	cred := e.Credential
	if cred == nil {
		c, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azure credentials: %w", err)
		}
		cred = c
	}
	f, err := armcompute.NewClientFactory(subscription, cred, e.ClientOptions)
	if err != nil {
		return nil, fmt.Errorf("azure compute clients: %w", err)
	}
	return &clients{
		vms:          f.NewVirtualMachinesClient(),
		vmExtensions: f.NewVirtualMachineExtensionsClient(),
		scaleSets:    f.NewVirtualMachineScaleSetsClient(),
		ssExtensions: f.NewVirtualMachineScaleSetExtensionsClient(),
		ssVMs:        f.NewVirtualMachineScaleSetVMsClient(),
	}, nil
}
