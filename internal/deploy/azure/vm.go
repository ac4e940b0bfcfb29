package azure

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// Target names a VM or a scale set.
type Target struct {
	Subscription  string
	ResourceGroup string
	Name          string
}

// vmInfo is what the rollout needs to know about a VM.
type vmInfo struct {
	id, location, osType string
}

// checkVM reads the VM and refuses one that is missing, runs Windows or is
// not running.
func checkVM(ctx context.Context, c *clients, t Target) (vmInfo, error) {
	resp, err := c.vms.Get(ctx, t.ResourceGroup, t.Name, &armcompute.VirtualMachinesClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesInstanceView)})
	if err != nil {
		if isNotFound(err) {
			return vmInfo{}, &targetError{kind: ErrNotFound, msg: fmt.Sprintf("VM %s not found in resource group %s", t.Name, t.ResourceGroup), err: err}
		}
		return vmInfo{}, azureError("read VM "+t.Name, err)
	}
	vm := resp.VirtualMachine
	info := vmInfo{id: deref(vm.ID), location: deref(vm.Location)}
	var power string
	if p := vm.Properties; p != nil {
		info.osType = osType(p.StorageProfile, p.OSProfile)
		if p.InstanceView != nil {
			for _, s := range p.InstanceView.Statuses {
				if state, ok := strings.CutPrefix(deref(s.Code), "PowerState/"); ok {
					power = state
				}
			}
		}
	}
	switch info.osType {
	case string(armcompute.OperatingSystemTypesLinux):
	case "":
		return vmInfo{}, &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("VM %s: cannot tell its operating system; drmfilter installs on Linux only", t.Name)}
	default:
		return vmInfo{}, &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("VM %s runs %s: drmfilter installs on Linux only", t.Name, info.osType)}
	}
	if power != "" && power != "running" {
		return vmInfo{}, &targetError{msg: fmt.Sprintf("VM %s is not running (PowerState/%s): start it, then run again", t.Name, power)}
	}
	return info, nil
}

// osType reads the OS from the OS disk, else from the OS profile.
func osType(sp *armcompute.StorageProfile, op *armcompute.OSProfile) string {
	if sp != nil && sp.OSDisk != nil && sp.OSDisk.OSType != nil {
		return string(*sp.OSDisk.OSType)
	}
	if op != nil {
		switch {
		case op.LinuxConfiguration != nil:
			return string(armcompute.OperatingSystemTypesLinux)
		case op.WindowsConfiguration != nil:
			return string(armcompute.OperatingSystemTypesWindows)
		}
	}
	return ""
}

// PlanVM checks the VM (a read) and says what DeployVM would do.
func PlanVM(ctx context.Context, env Env, t Target, in Install) (*Plan, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	c, err := env.clients(t.Subscription)
	if err != nil {
		return nil, err
	}
	info, err := checkVM(ctx, c, t)
	if err != nil {
		return nil, err
	}
	return &Plan{
		Kind:      "vm",
		Target:    info.id,
		Location:  info.location,
		OSType:    info.osType,
		Extension: in.settings(ForceUpdateTag(in.SHA256, env.now())),
		Reads:     []string{fmt.Sprintf("VirtualMachines.Get %s with its instance view (it exists, runs Linux, is running)", t.Name)},
		Calls: []string{
			fmt.Sprintf("VirtualMachineExtensions.BeginCreateOrUpdate %s/%s, polled every %s until done", t.Name, in.ExtensionName, env.pollFrequency()),
			fmt.Sprintf("VirtualMachineExtensions.Get %s/%s with its instance view (status, stdout, stderr)", t.Name, in.ExtensionName),
		},
	}, nil
}

// DeployVM installs drmfilter on one VM: it checks the VM, creates or
// updates the extension with a new forceUpdateTag, waits for it, and reads
// its status and output. An error means nothing was attempted (VM missing,
// not Linux, no access); a failed installation is a Result.
func DeployVM(ctx context.Context, env Env, t Target, in Install) (Result, error) {
	if err := in.Validate(); err != nil {
		return Result{}, err
	}
	c, err := env.clients(t.Subscription)
	if err != nil {
		return Result{}, err
	}
	info, err := checkVM(ctx, c, t)
	if err != nil {
		return Result{}, err
	}
	tag := ForceUpdateTag(in.SHA256, env.now())
	log := env.logger().With("vm", t.Name, "extension", in.ExtensionName)
	log.Info("create or update extension", "forceUpdateTag", tag)

	r := Result{Name: t.Name}
	// A failure in the first response surfaces at Begin, later ones at
	// PollUntilDone: both land in err.
	poller, err := c.vmExtensions.BeginCreateOrUpdate(ctx, t.ResourceGroup, t.Name, in.ExtensionName, in.vmExtension(info.location, tag), nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: env.pollFrequency()})
	}
	if err != nil && ctx.Err() != nil {
		r.Result = TimedOut
		r.Message = fmt.Sprintf("no result before the timeout; the extension may still be running: az vm extension show -g %s --vm-name %s -n %s --instance-view", t.ResourceGroup, t.Name, in.ExtensionName)
		log.Info("timed out")
		return r, nil
	}
	view, viewErr := vmExtensionView(ctx, c, t, in.ExtensionName)
	if err != nil {
		// Azure's message names the failure; the instance view adds the
		// script's output when there is one.
		r.Result = Failed
		r.Message = describe(err)
		if viewErr == nil && view != nil {
			var fromView Result
			readExtensionView(&fromView, view)
			r.Stdout, r.Stderr = fromView.Stdout, fromView.Stderr
			if fromView.Result == Failed {
				// The view's summary without the output Azure's message
				// repeats.
				r.Message = errorCode(err) + ": " + fromView.Message
			}
		}
		log.Info("extension failed", "error", r.Message)
		return r, nil
	}
	if viewErr != nil {
		r.Result = Succeeded
		r.Message = "installed; could not read the extension's output: " + describe(viewErr)
		return r, nil
	}
	readExtensionView(&r, view)
	log.Info("extension finished", "result", r.Result)
	return r, nil
}

func vmExtensionView(ctx context.Context, c *clients, t Target, name string) (*armcompute.VirtualMachineExtensionInstanceView, error) {
	resp, err := c.vmExtensions.Get(ctx, t.ResourceGroup, t.Name, name, &armcompute.VirtualMachineExtensionsClientGetOptions{Expand: to.Ptr("instanceView")})
	if err != nil {
		return nil, err
	}
	if resp.Properties == nil {
		return nil, nil
	}
	return resp.Properties.InstanceView, nil
}
