package azure_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
	"github.com/drmfilter/drmfilter/internal/deploy/azure/azurefake"
)

const (
	sha     = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	pkgURL  = "https://acct.blob.core.windows.net/pkg/drmfilter_1.0.0_amd64.deb?sv=2024-11-04&sig=SECRETSIG"
	script  = "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.0.0/scripts/install.sh"
	polURL  = "https://acct.blob.core.windows.net/pol/finance.yaml?sig=POLSECRET"
	tagWant = "9f86d081884c-20261126T220000Z"
)

func install() azure.Install {
	return azure.Install{PackageURL: pkgURL, SHA256: sha, ScriptURL: script, PolicyURLs: []string{polURL}, Mode: "audit", ExtensionName: azure.DefaultExtensionName}
}

func vmCloud(vm *azurefake.VM) *azurefake.Cloud {
	c := azurefake.New()
	c.VMs["web-1"] = vm
	return c
}

var vmTarget = azure.Target{Subscription: azurefake.Subscription, ResourceGroup: "prod", Name: "web-1"}

func TestDeployVMCreatesTheExtensionWithSecretsProtected(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux, Outcome: azurefake.Outcome{Stdout: "downloaded " + pkgURL + "\ndrmfilter.service active\n"}})
	env := c.Env()
	var logs bytes.Buffer
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	res, err := azure.DeployVM(context.Background(), env, vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	want := azure.Result{Name: "web-1", Result: azure.Succeeded, Message: "Enable succeeded",
		Stdout: "downloaded https://acct.blob.core.windows.net/pkg/drmfilter_1.0.0_amd64.deb?<redacted>\ndrmfilter.service active"}
	if res != want {
		t.Errorf("result:\n%+v\nwant:\n%+v", res, want)
	}

	var apis []string
	for _, call := range c.Calls() {
		apis = append(apis, call.API+" "+call.Target+" "+call.Expand)
	}
	wantAPIs := []string{
		azurefake.VMGet + " web-1 instanceView",
		azurefake.VMExtensionCreate + " web-1/drmfilter-install ",
		azurefake.VMExtensionGet + " web-1/drmfilter-install instanceView",
	}
	if !reflect.DeepEqual(apis, wantAPIs) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(apis, "\n"), strings.Join(wantAPIs, "\n"))
	}
	ext := c.CallsTo(azurefake.VMExtensionCreate)[0].Body.(armcompute.VirtualMachineExtension)
	p := ext.Properties
	if *ext.Location != "westeurope" || *p.Publisher != "Microsoft.Azure.Extensions" || *p.Type != "CustomScript" ||
		*p.TypeHandlerVersion != "2.1" || !*p.AutoUpgradeMinorVersion || *p.ForceUpdateTag != tagWant {
		t.Errorf("extension properties: location %s %s/%s %s autoUpgrade %t tag %s", *ext.Location, *p.Publisher, *p.Type, *p.TypeHandlerVersion, *p.AutoUpgradeMinorVersion, *p.ForceUpdateTag)
	}
	if s, ok := p.Settings.(map[string]any); !ok || len(s) != 0 {
		t.Errorf("public settings = %#v, want empty", p.Settings)
	}
	wantProtected := map[string]any{
		"fileUris": []any{script},
		"commandToExecute": "sh install.sh --package-url '" + pkgURL + "' --sha256 " + sha +
			" --policy-url '" + polURL + "' --mode audit",
	}
	if !reflect.DeepEqual(p.ProtectedSettings, wantProtected) {
		t.Errorf("protected settings:\n%#v\nwant:\n%#v", p.ProtectedSettings, wantProtected)
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("a secret reached the logs:\n%s", logs.String())
	}
}

func TestDeployVMRefusesWindows(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesWindows})
	_, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
	if !errors.Is(err, azure.ErrUnsupported) || err.Error() != "VM web-1 runs Windows: drmfilter installs on Linux only" {
		t.Fatalf("err = %v", err)
	}
	if m := c.Mutations(); len(m) != 0 {
		t.Errorf("mutating calls: %+v", m)
	}
}

func TestDeployVMRefusesAStoppedVM(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux, PowerState: "deallocated"})
	_, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
	if err == nil || err.Error() != "VM web-1 is not running (PowerState/deallocated): start it, then run again" {
		t.Fatalf("err = %v", err)
	}
	if m := c.Mutations(); len(m) != 0 {
		t.Errorf("mutating calls: %+v", m)
	}
}

func TestDeployVMNotFound(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	tgt := vmTarget
	tgt.Name = "web-9"
	_, err := azure.DeployVM(context.Background(), c.Env(), tgt, install())
	if !errors.Is(err, azure.ErrNotFound) || err.Error() != "VM web-9 not found in resource group prod" {
		t.Fatalf("err = %v", err)
	}
}

func TestDeployVMPermissionDenied(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	c.Errors[azurefake.VMExtensionCreate] = azurefake.ErrorSpec{Status: 403, Code: "AuthorizationFailed"}
	res, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	want := "permission denied (AuthorizationFailed); " + azure.RoleHint
	if res.Result != azure.Failed || res.Message != want {
		t.Errorf("result %q, message %q; want failed, %q", res.Result, res.Message, want)
	}
}

// The extension's failure comes back from Begin when the operation has no
// running phase, and from PollUntilDone otherwise; both report the
// script's stderr.
func TestDeployVMExtensionFailure(t *testing.T) {
	for _, atBegin := range []bool{true, false} {
		c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux, Outcome: azurefake.Outcome{
			Fail: true, FailAtBegin: atBegin, Stdout: "downloading package\n", Stderr: "install.sh: sha256 mismatch: got 0123, want 9f86\n"}})
		res, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
		if err != nil {
			t.Fatal(err)
		}
		want := azure.Result{Name: "web-1", Result: azure.Failed, Message: "VMExtensionProvisioningError: Enable failed: failed to execute command: command terminated with exit status=1",
			Stdout: "downloading package", Stderr: "install.sh: sha256 mismatch: got 0123, want 9f86"}
		if res != want {
			t.Errorf("at begin %t: result\n%+v\nwant\n%+v", atBegin, res, want)
		}
		if got := res.Tail(); got != "install.sh: sha256 mismatch: got 0123, want 9f86" {
			t.Errorf("tail = %q", got)
		}
	}
}

func TestDeployVMRetriesAThrottledCall(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	c.Throttle[azurefake.VMExtensionCreate] = 2
	res, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != azure.Succeeded {
		t.Errorf("result %+v", res)
	}
	// Two 429s, then the request that reached the fake server and started
	// the operation.
	if got := len(c.CallsTo(azurefake.VMExtensionCreate)); got != 1 {
		t.Errorf("fake server saw %d create calls, want 1", got)
	}
	if got := c.Attempts(azurefake.VMExtensionCreate); got < 3 {
		t.Errorf("%d requests, want at least 3 (2 throttled)", got)
	}
}

func TestDeployVMThrottledBeyondRetries(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	c.Throttle[azurefake.VMExtensionCreate] = 10
	res, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	want := "throttled by Azure, still after retries (TooManyRequests: The request is being throttled.)"
	if res.Result != azure.Failed || res.Message != want {
		t.Errorf("result %q %q, want failed %q", res.Result, res.Message, want)
	}
}

func TestDeployVMTimesOut(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	c.Block[azurefake.VMExtensionCreate] = 1
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := azure.DeployVM(ctx, c.Env(), vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != azure.TimedOut || !strings.Contains(res.Message, "az vm extension show -g prod --vm-name web-1 -n drmfilter-install --instance-view") {
		t.Errorf("result %+v", res)
	}
}

func TestPlanVMReadsOnly(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	plan, err := azure.PlanVM(context.Background(), c.Env(), vmTarget, install())
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Mutations(); len(m) != 0 {
		t.Errorf("dry run made mutating calls: %+v", m)
	}
	var b bytes.Buffer
	if err := plan.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Dry run: nothing was changed.",
		"Target VM:",
		"/subscriptions/" + azurefake.Subscription + "/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/web-1",
		"Linux, westeurope",
		"Microsoft.Azure.Extensions/CustomScript 2.1, autoUpgradeMinorVersion true",
		tagWant,
		"sh install.sh --package-url 'https://acct.blob.core.windows.net/pkg/drmfilter_1.0.0_amd64.deb?<redacted>' --sha256 " + sha + " --policy-url 'https://acct.blob.core.windows.net/pol/finance.yaml?<redacted>' --mode audit",
		"1. VirtualMachineExtensions.BeginCreateOrUpdate web-1/drmfilter-install",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "SECRET") || strings.Contains(out, "sig=") {
		t.Errorf("plan shows a secret:\n%s", out)
	}
}

// commandToExecute is run by the extension with /bin/sh from the download
// directory: run it the same way with a stand-in install.sh that prints
// its arguments, to check the quoting of URLs with & and '.
func TestCommandToExecuteQuotesForSh(t *testing.T) {
	c := vmCloud(&azurefake.VM{OSType: armcompute.OperatingSystemTypesLinux})
	in := install()
	in.PolicyURLs = append(in.PolicyURLs, "https://example.com/it's a policy.yaml?a=1&b=$(reboot)")
	if _, err := azure.DeployVM(context.Background(), c.Env(), vmTarget, in); err != nil {
		t.Fatal(err)
	}
	ext := c.CallsTo(azurefake.VMExtensionCreate)[0].Body.(armcompute.VirtualMachineExtension)
	command := ext.Properties.ProtectedSettings.(map[string]any)["commandToExecute"].(string)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "install.sh"), []byte("for a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	want := strings.Join([]string{"--package-url", pkgURL, "--sha256", sha, "--policy-url", polURL,
		"--policy-url", "https://example.com/it's a policy.yaml?a=1&b=$(reboot)", "--mode", "audit"}, "\n") + "\n"
	if string(out) != want {
		t.Errorf("install.sh got:\n%s\nwant:\n%s", out, want)
	}
}
