package azurefake

import (
	"context"
	"net/http"
	"strconv"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8/fake"
)

func (c *Cloud) vmServer() fake.VirtualMachinesServer {
	return fake.VirtualMachinesServer{
		Get: func(ctx context.Context, rg, name string, o *armcompute.VirtualMachinesClientGetOptions) (resp azfake.Responder[armcompute.VirtualMachinesClientGetResponse], errResp azfake.ErrorResponder) {
			call := Call{API: VMGet, Target: name}
			if o != nil && o.Expand != nil {
				call.Expand = string(*o.Expand)
			}
			if spec := c.enter(ctx, call); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			vm, ok := c.VMs[name]
			if !ok || rg != c.ResourceGroup {
				notFound(&errResp)
				return
			}
			power := vm.PowerState
			if power == "" {
				power = "running"
			}
			resp.SetResponse(http.StatusOK, armcompute.VirtualMachinesClientGetResponse{VirtualMachine: armcompute.VirtualMachine{
				ID:       to.Ptr(c.id("virtualMachines", name)),
				Name:     to.Ptr(name),
				Location: to.Ptr("westeurope"),
				Properties: &armcompute.VirtualMachineProperties{
					StorageProfile: &armcompute.StorageProfile{OSDisk: &armcompute.OSDisk{OSType: to.Ptr(vm.OSType)}},
					InstanceView: &armcompute.VirtualMachineInstanceView{Statuses: []*armcompute.InstanceViewStatus{
						{Code: to.Ptr("ProvisioningState/succeeded")},
						{Code: to.Ptr("PowerState/" + power)},
					}},
				},
			}}, nil)
			return
		},
	}
}

func (c *Cloud) vmExtensionServer() fake.VirtualMachineExtensionsServer {
	return fake.VirtualMachineExtensionsServer{
		BeginCreateOrUpdate: func(ctx context.Context, rg, vmName, extName string, ext armcompute.VirtualMachineExtension, _ *armcompute.VirtualMachineExtensionsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcompute.VirtualMachineExtensionsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
			if spec := c.enter(ctx, Call{API: VMExtensionCreate, Target: vmName + "/" + extName, Body: ext}); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			vm, ok := c.VMs[vmName]
			if !ok {
				notFound(&errResp)
				return
			}
			if !vm.Outcome.FailAtBegin {
				resp.AddNonTerminalResponse(http.StatusCreated, nil)
			}
			if vm.Outcome.Fail {
				resp.SetTerminalError(http.StatusOK, "VMExtensionProvisioningError")
				return
			}
			ext.Name = to.Ptr(extName)
			resp.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachineExtensionsClientCreateOrUpdateResponse{VirtualMachineExtension: ext}, nil)
			return
		},
		Get: func(ctx context.Context, rg, vmName, extName string, o *armcompute.VirtualMachineExtensionsClientGetOptions) (resp azfake.Responder[armcompute.VirtualMachineExtensionsClientGetResponse], errResp azfake.ErrorResponder) {
			call := Call{API: VMExtensionGet, Target: vmName + "/" + extName}
			if o != nil && o.Expand != nil {
				call.Expand = *o.Expand
			}
			if spec := c.enter(ctx, call); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			vm, ok := c.VMs[vmName]
			if !ok {
				notFound(&errResp)
				return
			}
			resp.SetResponse(http.StatusOK, armcompute.VirtualMachineExtensionsClientGetResponse{VirtualMachineExtension: armcompute.VirtualMachineExtension{
				Name:       to.Ptr(extName),
				Properties: &armcompute.VirtualMachineExtensionProperties{InstanceView: extensionView(extName, vm.Outcome)},
			}}, nil)
			return
		},
	}
}

func (c *Cloud) scaleSetServer() fake.VirtualMachineScaleSetsServer {
	return fake.VirtualMachineScaleSetsServer{
		Get: func(ctx context.Context, rg, name string, _ *armcompute.VirtualMachineScaleSetsClientGetOptions) (resp azfake.Responder[armcompute.VirtualMachineScaleSetsClientGetResponse], errResp azfake.ErrorResponder) {
			if spec := c.enter(ctx, Call{API: ScaleSetGet, Target: name}); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			ss, ok := c.ScaleSets[name]
			if !ok || rg != c.ResourceGroup {
				notFound(&errResp)
				return
			}
			mode := ss.UpgradeMode
			if mode == "" {
				mode = armcompute.UpgradeModeManual
			}
			resp.SetResponse(http.StatusOK, armcompute.VirtualMachineScaleSetsClientGetResponse{VirtualMachineScaleSet: armcompute.VirtualMachineScaleSet{
				ID:       to.Ptr(c.id("virtualMachineScaleSets", name)),
				Name:     to.Ptr(name),
				Location: to.Ptr("westeurope"),
				Properties: &armcompute.VirtualMachineScaleSetProperties{
					OrchestrationMode: to.Ptr(armcompute.OrchestrationModeUniform),
					UpgradePolicy:     &armcompute.UpgradePolicy{Mode: to.Ptr(mode)},
					VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
						StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{OSDisk: &armcompute.VirtualMachineScaleSetOSDisk{OSType: to.Ptr(ss.OSType)}},
					},
				},
			}}, nil)
			return
		},
		BeginUpdateInstances: func(ctx context.Context, rg, name string, ids armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs, _ *armcompute.VirtualMachineScaleSetsClientBeginUpdateInstancesOptions) (resp azfake.PollerResponder[armcompute.VirtualMachineScaleSetsClientUpdateInstancesResponse], errResp azfake.ErrorResponder) {
			var list []string
			for _, id := range ids.InstanceIDs {
				list = append(list, *id)
			}
			if spec := c.enter(ctx, Call{API: UpdateInstances, Target: name, Body: list}); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			ss, ok := c.ScaleSets[name]
			if !ok {
				notFound(&errResp)
				return
			}
			resp.AddNonTerminalResponse(http.StatusAccepted, nil)
			for _, id := range list {
				if ss.Outcomes[id].Fail {
					// ARM fails the whole upgrade when an extension fails
					// on any instance.
					resp.SetTerminalError(http.StatusOK, "VMExtensionProvisioningError")
					return
				}
			}
			resp.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachineScaleSetsClientUpdateInstancesResponse{}, nil)
			return
		},
	}
}

func (c *Cloud) scaleSetExtensionServer() fake.VirtualMachineScaleSetExtensionsServer {
	return fake.VirtualMachineScaleSetExtensionsServer{
		BeginCreateOrUpdate: func(ctx context.Context, rg, name, extName string, ext armcompute.VirtualMachineScaleSetExtension, _ *armcompute.VirtualMachineScaleSetExtensionsClientBeginCreateOrUpdateOptions) (resp azfake.PollerResponder[armcompute.VirtualMachineScaleSetExtensionsClientCreateOrUpdateResponse], errResp azfake.ErrorResponder) {
			if spec := c.enter(ctx, Call{API: ScaleSetExtCreate, Target: name + "/" + extName, Body: ext}); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			if _, ok := c.ScaleSets[name]; !ok {
				notFound(&errResp)
				return
			}
			resp.AddNonTerminalResponse(http.StatusCreated, nil)
			resp.SetTerminalResponse(http.StatusOK, armcompute.VirtualMachineScaleSetExtensionsClientCreateOrUpdateResponse{VirtualMachineScaleSetExtension: ext}, nil)
			return
		},
	}
}

func (c *Cloud) scaleSetVMServer() fake.VirtualMachineScaleSetVMsServer {
	return fake.VirtualMachineScaleSetVMsServer{
		NewListPager: func(rg, name string, _ *armcompute.VirtualMachineScaleSetVMsClientListOptions) (resp azfake.PagerResponder[armcompute.VirtualMachineScaleSetVMsClientListResponse]) {
			c.enter(context.Background(), Call{API: ListInstances, Target: name})
			ss, ok := c.ScaleSets[name]
			if !ok {
				resp.AddResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			// Pages of 4, as ARM pages long lists.
			var page []*armcompute.VirtualMachineScaleSetVM
			for i := range ss.Instances {
				id := strconv.Itoa(i)
				page = append(page, &armcompute.VirtualMachineScaleSetVM{
					ID:         to.Ptr(c.id("virtualMachineScaleSets", name) + "/virtualMachines/" + id),
					InstanceID: to.Ptr(id),
					Name:       to.Ptr(name + "_" + id),
				})
				if len(page) == 4 || i == ss.Instances-1 {
					resp.AddPage(http.StatusOK, armcompute.VirtualMachineScaleSetVMsClientListResponse{VirtualMachineScaleSetVMListResult: armcompute.VirtualMachineScaleSetVMListResult{Value: page}}, nil)
					page = nil
				}
			}
			return
		},
		GetInstanceView: func(ctx context.Context, rg, name, id string, _ *armcompute.VirtualMachineScaleSetVMsClientGetInstanceViewOptions) (resp azfake.Responder[armcompute.VirtualMachineScaleSetVMsClientGetInstanceViewResponse], errResp azfake.ErrorResponder) {
			if spec := c.enter(ctx, Call{API: InstanceView, Target: name + "/" + id}); spec != nil {
				errResp.SetResponseError(spec.Status, spec.Code)
				return
			}
			ss, ok := c.ScaleSets[name]
			if !ok || instanceNumber(id) >= ss.Instances {
				notFound(&errResp)
				return
			}
			resp.SetResponse(http.StatusOK, armcompute.VirtualMachineScaleSetVMsClientGetInstanceViewResponse{VirtualMachineScaleSetVMInstanceView: armcompute.VirtualMachineScaleSetVMInstanceView{
				Extensions: []*armcompute.VirtualMachineExtensionInstanceView{extensionView(c.ExtensionName, ss.Outcomes[id])},
			}}, nil)
			return
		},
	}
}
