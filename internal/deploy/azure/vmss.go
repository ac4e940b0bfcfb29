package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/drmfilter/drmfilter/internal/progress"
)

// ScaleSetRequest is a rollout to a scale set.
type ScaleSetRequest struct {
	Target
	Install Install
	// BatchSize is how many instances are upgraded at once.
	BatchSize int
	// MaxFailures is how many failed instances are tolerated; the rollout
	// stops after the batch that exceeds it.
	MaxFailures int
	// StateFile records progress; empty means DefaultStatePath.
	StateFile string
	// Resume skips instances the state file says succeeded with the same
	// package.
	Resume bool
	// Progress receives progress lines or a bar; nil discards them.
	Progress io.Writer
}

// Validate checks the request's numbers and install settings.
func (r ScaleSetRequest) Validate() error {
	if r.BatchSize < 1 {
		return errors.New("--batch-size: must be at least 1")
	}
	if r.MaxFailures < 0 {
		return errors.New("--max-failures: must not be negative")
	}
	return r.Install.Validate()
}

// ScaleSetReport is the outcome of a scale set rollout.
type ScaleSetReport struct {
	ScaleSetID string `json:"scaleSetId"`
	// Results has one entry per instance of the scale set, by instance ID.
	Results []Result `json:"results"`
	// Stopped says why the rollout stopped before the last batch; empty if
	// every batch ran.
	Stopped   string `json:"stopped,omitempty"`
	StateFile string `json:"stateFile"`
}

// OK reports whether every instance has the package.
func (r *ScaleSetReport) OK() bool {
	if r.Stopped != "" {
		return false
	}
	for _, res := range r.Results {
		if !res.OK() {
			return false
		}
	}
	return true
}

type instance struct{ id, name string }

// rollout is what both the plan and the deployment start from.
type rollout struct {
	c         *clients
	req       ScaleSetRequest
	env       Env
	id        string
	location  string
	osType    string
	mode      string
	statePath string
	state     *State
	tag       string
	skipped   []instance
	batches   [][]instance
}

// prepare reads the scale set and its instances (reads only), loads the
// state to resume from, and cuts the remaining instances into batches.
func prepare(ctx context.Context, env Env, req ScaleSetRequest) (*rollout, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	c, err := env.clients(req.Subscription)
	if err != nil {
		return nil, err
	}
	ro := &rollout{c: c, req: req, env: env, statePath: req.StateFile}
	if err := ro.checkScaleSet(ctx); err != nil {
		return nil, err
	}
	instances, err := ro.listInstances(ctx)
	if err != nil {
		return nil, err
	}
	if ro.statePath == "" {
		if ro.statePath, err = DefaultStatePath(req.Target); err != nil {
			return nil, err
		}
	}
	sha := req.Install.SHA256
	ro.state = &State{Instances: map[string]InstanceRecord{}}
	if req.Resume {
		s, err := LoadState(ro.statePath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--resume: no state file %s (pass the --state-file of the run to resume, or run without --resume)", ro.statePath)
		}
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(s.ScaleSetID, ro.id) {
			return nil, fmt.Errorf("--resume: state file %s is for scale set %s, not %s", ro.statePath, s.ScaleSetID, ro.id)
		}
		ro.state = s
	}
	// Every run, resumed ones too, gets a new tag: an instance that
	// already has the latest model is not upgraded again, so a failed
	// instance is retried only if the model changed. Instances skipped as
	// done keep the package; Azure shows them as not on the latest model.
	ro.tag = ForceUpdateTag(sha, env.now())
	var pending []instance
	for _, in := range instances {
		if req.Resume && ro.state.done(in.id, sha) {
			ro.skipped = append(ro.skipped, in)
			continue
		}
		pending = append(pending, in)
	}
	for b := range slices.Chunk(pending, req.BatchSize) {
		ro.batches = append(ro.batches, b)
	}
	return ro, nil
}

func (ro *rollout) checkScaleSet(ctx context.Context) error {
	t := ro.req.Target
	resp, err := ro.c.scaleSets.Get(ctx, t.ResourceGroup, t.Name, nil)
	if err != nil {
		if isNotFound(err) {
			return &targetError{kind: ErrNotFound, msg: fmt.Sprintf("scale set %s not found in resource group %s", t.Name, t.ResourceGroup), err: err}
		}
		return azureError("read scale set "+t.Name, err)
	}
	ss := resp.VirtualMachineScaleSet
	ro.id, ro.location = deref(ss.ID), deref(ss.Location)
	ro.mode = string(armcompute.UpgradeModeManual) // Azure's default
	p := ss.Properties
	if p != nil && p.UpgradePolicy != nil && p.UpgradePolicy.Mode != nil {
		ro.mode = string(*p.UpgradePolicy.Mode)
	}
	if p != nil && p.VirtualMachineProfile != nil {
		vp := p.VirtualMachineProfile
		switch {
		case vp.StorageProfile != nil && vp.StorageProfile.OSDisk != nil && vp.StorageProfile.OSDisk.OSType != nil:
			ro.osType = string(*vp.StorageProfile.OSDisk.OSType)
		case vp.OSProfile != nil && vp.OSProfile.LinuxConfiguration != nil:
			ro.osType = string(armcompute.OperatingSystemTypesLinux)
		case vp.OSProfile != nil && vp.OSProfile.WindowsConfiguration != nil:
			ro.osType = string(armcompute.OperatingSystemTypesWindows)
		}
	}
	switch {
	case ro.osType == "":
		return &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("scale set %s: cannot tell its operating system; drmfilter installs on Linux only", t.Name)}
	case ro.osType != string(armcompute.OperatingSystemTypesLinux):
		return &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("scale set %s runs %s: drmfilter installs on Linux only", t.Name, ro.osType)}
	case p != nil && p.OrchestrationMode != nil && *p.OrchestrationMode == armcompute.OrchestrationModeFlexible:
		return &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("scale set %s uses Flexible orchestration, whose instances cannot be upgraded from the scale set model: deploy to each VM with 'drmfilter deploy azure vm'", t.Name)}
	case ro.mode != string(armcompute.UpgradeModeManual):
		return &targetError{kind: ErrUnsupported, msg: fmt.Sprintf("scale set %s has upgrade policy %s: Azure upgrades its instances itself when the model changes, so drmfilter cannot batch them; set upgradePolicy.mode to Manual", t.Name, ro.mode)}
	}
	return nil
}

func (ro *rollout) listInstances(ctx context.Context) ([]instance, error) {
	t := ro.req.Target
	var out []instance
	pager := ro.c.ssVMs.NewListPager(t.ResourceGroup, t.Name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, azureError("list instances of scale set "+t.Name, err)
		}
		for _, vm := range page.Value {
			if vm != nil && vm.InstanceID != nil {
				out = append(out, instance{id: *vm.InstanceID, name: deref(vm.Name)})
			}
		}
	}
	slices.SortFunc(out, func(a, b instance) int { return compareIDs(a.id, b.id) })
	return out, nil
}

// compareIDs orders instance IDs numerically when they are numbers.
func compareIDs(a, b string) int {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	if errA == nil && errB == nil {
		return x - y
	}
	return strings.Compare(a, b)
}

// PlanScaleSet reads the scale set and its instances and says what
// DeployScaleSet would do.
func PlanScaleSet(ctx context.Context, env Env, req ScaleSetRequest) (*Plan, error) {
	ro, err := prepare(ctx, env, req)
	if err != nil {
		return nil, err
	}
	t, ext := req.Target, req.Install.ExtensionName
	p := &Plan{
		Kind:        "vmss",
		Target:      ro.id,
		Location:    ro.location,
		OSType:      ro.osType,
		UpgradeMode: ro.mode,
		Extension:   req.Install.settings(ro.tag),
		Reads: []string{
			fmt.Sprintf("VirtualMachineScaleSets.Get %s (it exists, runs Linux, upgrade policy)", t.Name),
			fmt.Sprintf("VirtualMachineScaleSetVMs.NewListPager %s (its instances)", t.Name),
		},
		Calls: []string{
			fmt.Sprintf("VirtualMachineScaleSetExtensions.BeginCreateOrUpdate %s/%s (the extension profile of the scale set model)", t.Name, ext),
			"per batch: VirtualMachineScaleSets.BeginUpdateInstances with the batch's instance IDs, polled until done",
			fmt.Sprintf("per instance: VirtualMachineScaleSetVMs.GetInstanceView, extension %s status, stdout and stderr", ext),
			fmt.Sprintf("stop when failed instances exceed %d", req.MaxFailures),
		},
		BatchSize: req.BatchSize,
		StateFile: ro.statePath,
	}
	if req.Resume {
		p.Reads = append(p.Reads, "state file "+ro.statePath)
	}
	for _, b := range ro.batches {
		p.Batches = append(p.Batches, ids(b))
	}
	p.Skipped = ids(ro.skipped)
	return p, nil
}

func ids(in []instance) []string {
	var out []string
	for _, i := range in {
		out = append(out, i.id)
	}
	return out
}

// DeployScaleSet rolls drmfilter out to a scale set with a Manual upgrade
// policy: it sets the extension in the scale set model, then upgrades the
// instances batch by batch, reading each instance's extension status after
// its batch and saving the state file. It stops after the batch in which
// failures exceed MaxFailures, or when ctx expires. An error means the
// rollout could not start or its state could not be saved; per-instance
// failures are in the report.
func DeployScaleSet(ctx context.Context, env Env, req ScaleSetRequest) (*ScaleSetReport, error) {
	ro, err := prepare(ctx, env, req)
	if err != nil {
		return nil, err
	}
	t, in := req.Target, req.Install
	log := env.logger().With("scaleSet", t.Name, "extension", in.ExtensionName)
	report := &ScaleSetReport{ScaleSetID: ro.id, StateFile: ro.statePath}

	log.Info("update extension profile", "forceUpdateTag", ro.tag)
	poller, err := ro.c.ssExtensions.BeginCreateOrUpdate(ctx, t.ResourceGroup, t.Name, in.ExtensionName, in.scaleSetExtension(ro.tag), nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, ro.pollOptions())
	}
	if err != nil {
		return nil, azureError(fmt.Sprintf("set extension %s on scale set %s", in.ExtensionName, t.Name), err)
	}
	s := ro.state
	s.ScaleSetID, s.PackageSHA256, s.ExtensionName, s.ForceUpdateTag = ro.id, in.SHA256, in.ExtensionName, ro.tag
	if err := s.Save(ro.statePath); err != nil {
		return nil, err
	}

	results := map[string]Result{}
	for _, i := range ro.skipped {
		results[i.id] = Result{InstanceID: i.id, Name: i.name, Result: SucceededBefore, Message: s.Instances[i.id].Message}
	}
	pending := 0
	for _, b := range ro.batches {
		pending += len(b)
	}
	prog := progress.New(orDiscard(req.Progress), pending, "instances")
	failures := 0
	for n, batch := range ro.batches {
		if report.Stopped != "" {
			for _, i := range batch {
				results[i.id] = Result{InstanceID: i.id, Name: i.name, Result: NotStarted}
			}
			continue
		}
		prog.Note(fmt.Sprintf("batch %d/%d: upgrading instances %s", n+1, len(ro.batches), strings.Join(ids(batch), ", ")))
		batchFailures := 0
		for _, r := range ro.upgradeBatch(ctx, batch) {
			results[r.InstanceID] = r
			if !r.OK() {
				batchFailures++
			}
			s.Instances[r.InstanceID] = InstanceRecord{Name: r.Name, Result: r.Result, Message: r.Message, PackageSHA256: in.SHA256, UpdatedAt: env.now().UTC()}
			line := fmt.Sprintf("%s (instance %s) %s", r.Name, r.InstanceID, r.Result)
			if !r.OK() && r.Tail() != "" {
				line += ": " + r.Tail()
			}
			prog.Step(1, line)
		}
		failures += batchFailures
		s.CompletedBatches = append(s.CompletedBatches, BatchRecord{InstanceIDs: ids(batch), Failures: batchFailures, FinishedAt: env.now().UTC()})
		if err := s.Save(ro.statePath); err != nil {
			return nil, err
		}
		log.Info("batch done", "batch", n+1, "failures", batchFailures)
		switch {
		case ctx.Err() != nil:
			report.Stopped = fmt.Sprintf("timed out during batch %d of %d", n+1, len(ro.batches))
		case failures > req.MaxFailures && n+1 < len(ro.batches):
			report.Stopped = fmt.Sprintf("stopped after batch %d of %d: %d failed instances exceed --max-failures %d", n+1, len(ro.batches), failures, req.MaxFailures)
		}
	}
	prog.Done()
	for _, r := range results {
		report.Results = append(report.Results, r)
	}
	slices.SortFunc(report.Results, func(a, b Result) int { return compareIDs(a.InstanceID, b.InstanceID) })
	return report, nil
}

func (ro *rollout) pollOptions() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: ro.env.pollFrequency()}
}

// upgradeBatch brings one batch to the latest model (which runs the
// extension) and reads each instance's extension status.
func (ro *rollout) upgradeBatch(ctx context.Context, batch []instance) []Result {
	t := ro.req.Target
	req := armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: to.SliceOfPtrs(ids(batch)...)}
	poller, err := ro.c.scaleSets.BeginUpdateInstances(ctx, t.ResourceGroup, t.Name, req, nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, ro.pollOptions())
	}
	out := make([]Result, 0, len(batch))
	if err != nil && (ctx.Err() != nil || !isExtensionError(err)) {
		// The upgrade itself failed (throttled, denied, timed out): the
		// instances' extension statuses would be those of an earlier run.
		res, msg := Failed, describe(err)
		if ctx.Err() != nil {
			res, msg = TimedOut, "the upgrade did not finish before the timeout"
		}
		for _, i := range batch {
			out = append(out, Result{InstanceID: i.id, Name: i.name, Result: res, Message: msg})
		}
		return out
	}
	for _, i := range batch {
		r := Result{InstanceID: i.id, Name: i.name}
		view, verr := ro.c.ssVMs.GetInstanceView(ctx, t.ResourceGroup, t.Name, i.id, nil)
		switch {
		case verr != nil && ctx.Err() != nil:
			r.Result, r.Message = TimedOut, "timed out reading the instance view"
		case verr != nil:
			r.Result, r.Message = Failed, "read instance view: "+describe(verr)
		default:
			ext := findExtensionView(view.Extensions, ro.req.Install.ExtensionName)
			readExtensionView(&r, ext)
			switch {
			case ext == nil && err != nil:
				r.Message = describe(err)
			case r.Result == Failed && err != nil:
				r.Message = errorCode(err) + ": " + r.Message
			}
		}
		out = append(out, r)
	}
	return out
}

// isExtensionError reports whether an upgrade failed because an extension
// failed on some instance (VMExtensionProvisioningError and kin), in which
// case each instance's own status tells which.
func isExtensionError(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	code, _ := providerError(re)
	return strings.Contains(code, "Extension")
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
