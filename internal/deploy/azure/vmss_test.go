package azure_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
	"github.com/drmfilter/drmfilter/internal/deploy/azure/azurefake"
)

func ssCloud(n int, outcomes map[string]azurefake.Outcome) *azurefake.Cloud {
	c := azurefake.New()
	c.ScaleSets["web"] = &azurefake.ScaleSet{OSType: armcompute.OperatingSystemTypesLinux, Instances: n, Outcomes: outcomes}
	return c
}

func ssRequest(t *testing.T, maxFailures int) azure.ScaleSetRequest {
	return azure.ScaleSetRequest{
		Target:      azure.Target{Subscription: azurefake.Subscription, ResourceGroup: "prod", Name: "web"},
		Install:     install(),
		BatchSize:   5,
		MaxFailures: maxFailures,
		StateFile:   filepath.Join(t.TempDir(), "state.json"),
	}
}

// batches returns the instance IDs of each UpdateInstances call.
func batches(c *azurefake.Cloud) [][]string {
	var out [][]string
	for _, call := range c.CallsTo(azurefake.UpdateInstances) {
		out = append(out, call.Body.([]string))
	}
	return out
}

func resultsByID(rep *azure.ScaleSetReport) map[string]string {
	m := map[string]string{}
	for _, r := range rep.Results {
		m[r.InstanceID] = r.Result
	}
	return m
}

func TestScaleSetInBatches(t *testing.T) {
	c := ssCloud(12, nil)
	req := ssRequest(t, 0)
	var prog bytes.Buffer
	req.Progress = &prog
	rep, err := azure.DeployScaleSet(context.Background(), c.Env(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Results) != 12 {
		t.Fatalf("report: %+v", rep)
	}
	want := [][]string{{"0", "1", "2", "3", "4"}, {"5", "6", "7", "8", "9"}, {"10", "11"}}
	if got := batches(c); !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}

	// The model first, then each batch followed by a read of each of its
	// instances before the next batch.
	var seq []string
	for _, call := range c.Calls() {
		switch call.API {
		case azurefake.ScaleSetExtCreate:
			seq = append(seq, "profile")
		case azurefake.UpdateInstances:
			seq = append(seq, "upgrade")
		case azurefake.InstanceView:
			seq = append(seq, strings.TrimPrefix(call.Target, "web/"))
		}
	}
	wantSeq := "profile upgrade 0 1 2 3 4 upgrade 5 6 7 8 9 upgrade 10 11"
	if got := strings.Join(seq, " "); got != wantSeq {
		t.Errorf("call order:\n%s\nwant:\n%s", got, wantSeq)
	}

	ext := c.CallsTo(azurefake.ScaleSetExtCreate)[0].Body.(armcompute.VirtualMachineScaleSetExtension)
	p := ext.Properties
	if *ext.Name != "drmfilter-install" || *p.Publisher != "Microsoft.Azure.Extensions" || *p.Type != "CustomScript" ||
		*p.TypeHandlerVersion != "2.1" || !*p.AutoUpgradeMinorVersion || *p.ForceUpdateTag != tagWant {
		t.Errorf("extension profile: %s %s/%s %s %t %s", *ext.Name, *p.Publisher, *p.Type, *p.TypeHandlerVersion, *p.AutoUpgradeMinorVersion, *p.ForceUpdateTag)
	}
	if s, ok := p.Settings.(map[string]any); !ok || len(s) != 0 {
		t.Errorf("public settings = %#v, want empty", p.Settings)
	}
	prot, _ := p.ProtectedSettings.(map[string]any)
	if cmd, _ := prot["commandToExecute"].(string); !strings.Contains(cmd, "--package-url '"+pkgURL+"'") {
		t.Errorf("protected settings = %#v", p.ProtectedSettings)
	}

	for _, line := range []string{
		"[0/12 instances] batch 1/3: upgrading instances 0, 1, 2, 3, 4",
		"[5/12 instances] web_4 (instance 4) succeeded",
		"[10/12 instances] batch 3/3: upgrading instances 10, 11",
		"[12/12 instances] web_11 (instance 11) succeeded",
	} {
		if !strings.Contains(prog.String(), line+"\n") {
			t.Errorf("progress lacks %q:\n%s", line, prog.String())
		}
	}

	st, err := azure.LoadState(req.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.ScaleSetID != "/subscriptions/"+azurefake.Subscription+"/resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/web" ||
		st.PackageSHA256 != sha || st.ForceUpdateTag != tagWant || len(st.CompletedBatches) != 3 || len(st.Instances) != 12 {
		t.Errorf("state: %+v", st)
	}
	if r := st.Instances["11"]; r.Result != azure.Succeeded || r.PackageSHA256 != sha || r.Name != "web_11" {
		t.Errorf("state of instance 11: %+v", r)
	}
}

// Two instances of the second batch fail with one failure allowed: the
// rollout stops before the third batch; a resumed run, once the cause is
// fixed, upgrades only what has not succeeded.
func TestScaleSetStopsPastTheThresholdAndResumes(t *testing.T) {
	bad := azurefake.Outcome{Fail: true, Stdout: "installing\n", Stderr: "dpkg: error: dependency problems\ninstall.sh: install failed\n"}
	c := ssCloud(12, map[string]azurefake.Outcome{"7": bad, "8": bad})
	req := ssRequest(t, 1)
	rep, err := azure.DeployScaleSet(context.Background(), c.Env(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Stopped != "stopped after batch 2 of 3: 2 failed instances exceed --max-failures 1" {
		t.Fatalf("stopped = %q", rep.Stopped)
	}
	want := map[string]string{"0": "succeeded", "1": "succeeded", "2": "succeeded", "3": "succeeded", "4": "succeeded",
		"5": "succeeded", "6": "succeeded", "7": "failed", "8": "failed", "9": "succeeded", "10": "not started", "11": "not started"}
	if got := resultsByID(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("results %v\nwant %v", got, want)
	}
	for _, r := range rep.Results {
		if r.InstanceID == "7" && (r.Tail() != "install.sh: install failed" || r.Stderr != "dpkg: error: dependency problems\ninstall.sh: install failed" ||
			r.Message != "VMExtensionProvisioningError: Enable failed: failed to execute command: command terminated with exit status=1") {
			t.Errorf("instance 7: %+v", r)
		}
	}
	if got := len(batches(c)); got != 2 {
		t.Errorf("%d batches ran, want 2", got)
	}

	// The package is fixed in place (same SHA-256 after the mirror is
	// repaired, say): resume.
	c2 := ssCloud(12, nil)
	c2.Now = c2.Now.Add(10 * time.Minute)
	req.Resume = true
	rep, err = azure.DeployScaleSet(context.Background(), c2.Env(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("resumed run: %+v", rep)
	}
	if got, want := batches(c2), [][]string{{"7", "8", "10", "11"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("resumed batches %v, want %v", got, want)
	}
	want = map[string]string{"0": "succeeded earlier", "1": "succeeded earlier", "2": "succeeded earlier", "3": "succeeded earlier", "4": "succeeded earlier",
		"5": "succeeded earlier", "6": "succeeded earlier", "7": "succeeded", "8": "succeeded", "9": "succeeded earlier", "10": "succeeded", "11": "succeeded"}
	if got := resultsByID(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("resumed results %v\nwant %v", got, want)
	}
	// A new forceUpdateTag, or Azure would not run the extension again on
	// instances 7 and 8, which already have the first run's model.
	ext := c2.CallsTo(azurefake.ScaleSetExtCreate)[0].Body.(armcompute.VirtualMachineScaleSetExtension)
	if got, want := *ext.Properties.ForceUpdateTag, "9f86d081884c-20261126T221000Z"; got != want {
		t.Errorf("resumed tag %s, want %s", got, want)
	}
	st, err := azure.LoadState(req.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.CompletedBatches) != 3 {
		t.Errorf("completed batches %+v, want 2 from the first run and 1 from the second", st.CompletedBatches)
	}
}

func TestScaleSetResumeWithAnotherPackageRedoesEverything(t *testing.T) {
	c := ssCloud(3, nil)
	req := ssRequest(t, 0)
	if _, err := azure.DeployScaleSet(context.Background(), c.Env(), req); err != nil {
		t.Fatal(err)
	}
	c2 := ssCloud(3, nil)
	c2.Now = c2.Now.Add(time.Hour)
	req.Resume = true
	req.Install.SHA256 = strings.Repeat("ab", 32)
	if _, err := azure.DeployScaleSet(context.Background(), c2.Env(), req); err != nil {
		t.Fatal(err)
	}
	if got, want := batches(c2), [][]string{{"0", "1", "2"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	ext := c2.CallsTo(azurefake.ScaleSetExtCreate)[0].Body.(armcompute.VirtualMachineScaleSetExtension)
	if got := *ext.Properties.ForceUpdateTag; got != "abababababab-20261126T230000Z" {
		t.Errorf("tag %s", got)
	}
}

func TestScaleSetResumeNeedsItsStateFile(t *testing.T) {
	c := ssCloud(3, nil)
	req := ssRequest(t, 0)
	req.Resume = true
	_, err := azure.DeployScaleSet(context.Background(), c.Env(), req)
	if err == nil || !strings.Contains(err.Error(), "--resume: no state file "+req.StateFile) {
		t.Fatalf("err = %v", err)
	}
	if m := c.Mutations(); len(m) != 0 {
		t.Errorf("mutating calls: %+v", m)
	}
}

func TestScaleSetRetriesAThrottledUpgrade(t *testing.T) {
	c := ssCloud(12, nil)
	c.Throttle[azurefake.UpdateInstances] = 1
	rep, err := azure.DeployScaleSet(context.Background(), c.Env(), ssRequest(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	if got := len(batches(c)); got != 3 {
		t.Errorf("fake server saw %d upgrades, want 3", got)
	}
	if got := c.Attempts(azurefake.UpdateInstances); got < 4 {
		t.Errorf("%d upgrade requests, want at least 4 (one throttled)", got)
	}
}

func TestScaleSetUpgradeErrorsAreReportedPerInstance(t *testing.T) {
	for _, tc := range []struct {
		spec azurefake.ErrorSpec
		want string
	}{
		{azurefake.ErrorSpec{Status: 403, Code: "AuthorizationFailed"}, "permission denied (AuthorizationFailed); " + azure.RoleHint},
		{azurefake.ErrorSpec{Status: 409, Code: "OperationNotAllowed"}, "OperationNotAllowed"},
	} {
		c := ssCloud(3, nil)
		c.Errors[azurefake.UpdateInstances] = tc.spec
		rep, err := azure.DeployScaleSet(context.Background(), c.Env(), ssRequest(t, 5))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if r.Result != azure.Failed || r.Message != tc.want {
				t.Errorf("%s: instance %s: %s %q, want failed %q", tc.spec.Code, r.InstanceID, r.Result, r.Message, tc.want)
			}
		}
		// The upgrade failed, so the instances' statuses (of an earlier
		// run) were not read as this run's.
		if n := len(c.CallsTo(azurefake.InstanceView)); n != 0 {
			t.Errorf("%s: %d instance views read", tc.spec.Code, n)
		}
	}
}

func TestScaleSetTimesOut(t *testing.T) {
	c := ssCloud(12, nil)
	c.Block[azurefake.UpdateInstances] = 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := ssRequest(t, 0)
	rep, err := azure.DeployScaleSet(ctx, c.Env(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stopped != "timed out during batch 2 of 3" {
		t.Errorf("stopped = %q", rep.Stopped)
	}
	want := map[string]string{"0": "succeeded", "1": "succeeded", "2": "succeeded", "3": "succeeded", "4": "succeeded",
		"5": "timed out", "6": "timed out", "7": "timed out", "8": "timed out", "9": "timed out", "10": "not started", "11": "not started"}
	if got := resultsByID(rep); !reflect.DeepEqual(got, want) {
		t.Errorf("results %v\nwant %v", got, want)
	}
	st, err := azure.LoadState(req.StateFile)
	if err != nil {
		t.Fatal(err)
	}
	if st.Instances["5"].Result != azure.TimedOut || st.Instances["4"].Result != azure.Succeeded {
		t.Errorf("state was not saved after the timeout: %+v", st.Instances)
	}
}

func TestScaleSetRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		ss   *azurefake.ScaleSet
		want string
	}{
		{"windows", &azurefake.ScaleSet{OSType: armcompute.OperatingSystemTypesWindows, Instances: 2}, "scale set web runs Windows: drmfilter installs on Linux only"},
		{"automatic", &azurefake.ScaleSet{OSType: armcompute.OperatingSystemTypesLinux, UpgradeMode: armcompute.UpgradeModeAutomatic, Instances: 2},
			"scale set web has upgrade policy Automatic: Azure upgrades its instances itself when the model changes, so drmfilter cannot batch them; set upgradePolicy.mode to Manual"},
	} {
		c := azurefake.New()
		c.ScaleSets["web"] = tc.ss
		_, err := azure.DeployScaleSet(context.Background(), c.Env(), ssRequest(t, 0))
		if !errors.Is(err, azure.ErrUnsupported) || err.Error() != tc.want {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if m := c.Mutations(); len(m) != 0 {
			t.Errorf("%s: mutating calls %+v", tc.name, m)
		}
	}
	c := azurefake.New()
	req := ssRequest(t, 0)
	_, err := azure.DeployScaleSet(context.Background(), c.Env(), req)
	if !errors.Is(err, azure.ErrNotFound) || err.Error() != "scale set web not found in resource group prod" {
		t.Errorf("missing scale set: err = %v", err)
	}
}

func TestPlanScaleSetReadsOnlyAndShowsBatches(t *testing.T) {
	// A first run stopped after instance 3 failed; the plan of the resumed
	// run leaves out what succeeded.
	c := ssCloud(12, map[string]azurefake.Outcome{"3": {Fail: true}})
	req := ssRequest(t, 0)
	req.BatchSize = 4
	if _, err := azure.DeployScaleSet(context.Background(), c.Env(), req); err != nil {
		t.Fatal(err)
	}
	c2 := ssCloud(12, nil)
	req.Resume = true
	plan, err := azure.PlanScaleSet(context.Background(), c2.Env(), req)
	if err != nil {
		t.Fatal(err)
	}
	if m := c2.Mutations(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %+v", m)
	}
	if got, want := plan.Batches, [][]string{{"3", "4", "5", "6"}, {"7", "8", "9", "10"}, {"11"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	if got, want := plan.Skipped, []string{"0", "1", "2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("skipped %v, want %v", got, want)
	}
	var b bytes.Buffer
	if err := plan.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Read to make this plan (reads only):",
		"VirtualMachineScaleSetVMs.NewListPager web (its instances)",
		"upgrade policy:",
		"Batches of 4 (9 instances to upgrade):",
		"batch 1:",
		"instances 3, 4, 5, 6",
		"instances 11",
		"instances 0, 1, 2",
		"?<redacted>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") {
		t.Errorf("plan shows a secret:\n%s", out)
	}
}

func TestScaleSetProfileUpdateDenied(t *testing.T) {
	c := ssCloud(3, nil)
	c.Errors[azurefake.ScaleSetExtCreate] = azurefake.ErrorSpec{Status: 403, Code: "AuthorizationFailed"}
	_, err := azure.DeployScaleSet(context.Background(), c.Env(), ssRequest(t, 0))
	want := "set extension drmfilter-install on scale set web: permission denied (AuthorizationFailed); " + azure.RoleHint
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if n := len(c.CallsTo(azurefake.UpdateInstances)); n != 0 {
		t.Errorf("%d upgrades after the model update failed", n)
	}
}
