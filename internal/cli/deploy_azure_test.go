//go:build !nodeploy

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
	"github.com/drmfilter/drmfilter/internal/deploy/azure/azurefake"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

const (
	azSHA    = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	azPkgURL = "https://acct.blob.core.windows.net/pkg/drmfilter.deb?sv=2024-11-04&sig=SECRETSIG"
)

// runAzure runs drmfilter with the cloud's fake servers behind `deploy
// azure`.
func runAzure(t *testing.T, cloud *azurefake.Cloud, args ...string) (int, string, string) {
	t.Helper()
	ctx := context.WithValue(context.Background(), azureEnvKey{}, cloud.Env())
	var out, errOut bytes.Buffer
	code := Main(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	if strings.Contains(out.String()+errOut.String(), "SECRET") {
		t.Errorf("a secret was printed:\n%s\n%s", out.String(), errOut.String())
	}
	return code, out.String(), errOut.String()
}

func azArgs(kind string, extra ...string) []string {
	return append([]string{"deploy", "azure", kind, "--subscription", azurefake.Subscription, "-g", "prod",
		"--package-url", azPkgURL, "--sha256", azSHA,
		"--script-url", "https://example.com/drmfilter/install.sh"}, extra...)
}

func TestDeployAzureVM(t *testing.T) {
	c := azurefake.New()
	c.VMs["web-1"] = &azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux, Outcome: azurefake.Outcome{Stdout: "fetching " + azPkgURL + "\ndrmfilter.service: active (running)\n"}}
	code, out, errOut := runAzure(t, c, azArgs("vm", "-n", "web-1", "--mode", "enforce")...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	want := `VM     RESULT     MESSAGE
web-1  succeeded  Enable succeeded

stdout (tail):
  fetching https://acct.blob.core.windows.net/pkg/drmfilter.deb?<redacted>
  drmfilter.service: active (running)
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	ext := c.CallsTo(azurefake.VMExtensionCreate)[0].Body.(armcompute.VirtualMachineExtension)
	prot := ext.Properties.ProtectedSettings.(map[string]any)
	if got, want := prot["commandToExecute"], "sh install.sh --package-url '"+azPkgURL+"' --sha256 "+azSHA+" --mode enforce"; got != want {
		t.Errorf("commandToExecute = %q, want %q", got, want)
	}
}

func TestDeployAzureVMFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		vm       *azurefake.VM
		code     int
		stderr   string
		inStdout string
	}{
		{"windows", &azurefake.VM{OSType: armcompute.OperatingSystemTypesWindows}, exitcode.Unsupported,
			"drmfilter: VM web-1 runs Windows: drmfilter installs on Linux only\n", ""},
		{"extension failed", &azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux, Outcome: azurefake.Outcome{Fail: true, Stderr: "install.sh: drmfilter.service failed to start\n"}},
			exitcode.Failure, "drmfilter: VM web-1: installation failed\n", "stderr (tail):\n  install.sh: drmfilter.service failed to start\n"},
	} {
		c := azurefake.New()
		c.VMs["web-1"] = tc.vm
		code, out, errOut := runAzure(t, c, azArgs("vm", "-n", "web-1")...)
		if code != tc.code || errOut != tc.stderr || !strings.Contains(out, tc.inStdout) {
			t.Errorf("%s: exit %d, stdout:\n%s\nstderr:\n%s", tc.name, code, out, errOut)
		}
	}
	code, _, errOut := runAzure(t, azurefake.New(), azArgs("vm", "-n", "nope")...)
	if code != exitcode.Failure || errOut != "drmfilter: VM nope not found in resource group prod\n" {
		t.Errorf("not found: exit %d, stderr %q", code, errOut)
	}
}

func TestDeployAzureVMSSDryRunChangesNothing(t *testing.T) {
	c := azurefake.New()
	c.ScaleSets["web"] = &azurefake.ScaleSet{OSType: armcompute.OperatingSystemTypesLinux, Instances: 12}
	state := filepath.Join(t.TempDir(), "state.json")
	code, out, errOut := runAzure(t, c, azArgs("vmss", "-n", "web", "--state-file", state, "--dry-run")...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"Dry run: nothing was changed.", "instances 0, 1, 2, 3, 4\n", "instances 5, 6, 7, 8, 9\n", "instances 10, 11\n", "drmfilter.deb?<redacted>"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runAzure(t, c, azArgs("vmss", "-n", "web", "--state-file", state, "--dry-run", "-o", "json", "--batch-size", "7")...)
	var plan azure.Plan
	if err := json.Unmarshal([]byte(out), &plan); code != exitcode.OK || err != nil {
		t.Fatalf("exit %d, %v, stderr:\n%s", code, err, errOut)
	}
	if len(plan.Batches) != 2 || len(plan.Batches[0]) != 7 || len(plan.Batches[1]) != 5 {
		t.Errorf("json batches %v", plan.Batches)
	}
	if m := c.Mutations(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %+v", m)
	}
}

func TestDeployAzureVMSSStopsThenResumes(t *testing.T) {
	c := azurefake.New()
	c.ScaleSets["web"] = &azurefake.ScaleSet{OSType: armcompute.OperatingSystemTypesLinux, Instances: 6,
		Outcomes: map[string]azurefake.Outcome{"1": {Fail: true, Stderr: "install.sh: sha256 mismatch\n"}}}
	state := filepath.Join(t.TempDir(), "state.json")
	args := azArgs("vmss", "-n", "web", "--state-file", state, "--batch-size", "2", "--max-failures", "0")
	code, out, errOut := runAzure(t, c, args...)
	wantOut := `INSTANCE  NAME   RESULT       MESSAGE
0         web_0  succeeded    Enable succeeded
1         web_1  failed       install.sh: sha256 mismatch
2         web_2  not started  
3         web_3  not started  
4         web_4  not started  
5         web_5  not started  
`
	wantErr := "drmfilter: stopped after batch 1 of 3: 1 failed instances exceed --max-failures 0; 5 of 6 instances did not succeed. " +
		"Fix the cause, then run the same command with --resume --state-file " + state + " to continue with the instances that have not succeeded\n"
	if code != exitcode.Failure || out != wantOut || !strings.HasSuffix(errOut, wantErr) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "[2/6 instances] web_1 (instance 1) failed: install.sh: sha256 mismatch\n") {
		t.Errorf("progress on stderr:\n%s", errOut)
	}

	c.ScaleSets["web"].Outcomes = nil
	code, out, errOut = runAzure(t, c, append(args, "--resume")...)
	if code != exitcode.OK || !strings.Contains(out, "0         web_0  succeeded earlier  Enable succeeded\n") {
		t.Fatalf("resume: exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var got [][]string
	for _, call := range c.CallsTo(azurefake.UpdateInstances) {
		got = append(got, call.Body.([]string))
	}
	if want := "[[0 1] [1 2] [3 4] [5]]"; fmtSlices(got) != want {
		t.Errorf("upgrades over both runs %s, want %s", fmtSlices(got), want)
	}
}

func fmtSlices(s [][]string) string {
	var parts []string
	for _, b := range s {
		parts = append(parts, "["+strings.Join(b, " ")+"]")
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestDeployAzureUsageErrors(t *testing.T) {
	t.Setenv("AZURE_SUBSCRIPTION_ID", "")
	c := azurefake.New()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "azure", "vm", "-g", "prod", "-n", "web-1", "--package-url", azPkgURL, "--sha256", azSHA, "--script-url", "https://example.com/install.sh"},
			"no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID"},
		{azArgs("vm", "-n", "web-1", "--sha256", "123"), "--sha256: want 64 lowercase hex digits"},
		{azArgs("vm", "-n", "web-1", "-o", "yaml"), `unknown output format "yaml" (want table or json)`},
		{azArgs("vmss", "-n", "web", "--batch-size", "0"), "--batch-size: must be at least 1"},
	} {
		code, _, errOut := runAzure(t, c, tc.args...)
		if code != exitcode.Usage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args[3:], code, errOut, tc.want)
		}
	}
	if m := c.Calls(); len(m) != 0 {
		t.Errorf("usage errors reached Azure: %+v", m)
	}
}
