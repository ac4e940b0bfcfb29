package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

const envFixtures = "../environ/testdata/fixtures"

// runEnv runs drmfilter in-process and returns its exit code and output.
func runEnv(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func TestEnvTableForFixture(t *testing.T) {
	code, out, errOut := runEnv(t, "env", "--root", envFixtures+"/aws-metal/root", "--arch", "x86_64", "--no-mounts")
	if code != exitcode.OK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `Hypervisor:                physical (none)
  evidence:                dmi sys_vendor="Amazon EC2"; dmi product_name has .metal (bare metal)
  dmi:                     Amazon EC2 / m5d.metal
Nested virtualization:     not a guest (this CPU: vmx yes, svm no)
Cloud:                     aws (bare metal), instance type m5d.metal
  evidence:                dmi sys_vendor="Amazon EC2"
Container (this process):  none

Disks:
  NAME     KIND                VIRTUAL  SIZE       VENDOR  MODEL
  nvme0n1  aws-ebs             yes      8.0 GiB    -       Amazon Elastic Block Store
  nvme1n1  aws-instance-store  no       838.2 GiB  -       Amazon EC2 NVMe Instance Storage
`
	if out != want {
		t.Errorf("table output:\n%s\nwant:\n%s", out, want)
	}
}

func TestEnvTablePodAndMounts(t *testing.T) {
	root := t.TempDir()
	src := envFixtures + "/aks-pod/root"
	if err := os.CopyFS(root, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	mi := "20 1 0:40 / / rw - overlay overlay rw\n21 20 0:41 / /mnt/azfiles rw - cifs //acct.file.core.windows.net/share rw\n"
	if err := os.WriteFile(filepath.Join(root, "proc/self/mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runEnv(t, "env", "--root", root, "--cpuid-vendor", "Microsoft Hv")
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"Hypervisor:                microsoft\n",
		"Cloud:                     azure\n",
		"Container (this process):  kubernetes (namespace isolation)\n",
		"  pod:                     uid 2f1a6c0e-5b8d-4e3f-9a7c-1d2e3f4a5b6c, qos guaranteed, runtime containerd\n",
		"  id:                      e2a6d1f0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2\n",
		"Mounts:\n",
		"  /             overlay  overlay                             overlay",
		"  /mnt/azfiles  cifs     //acct.file.core.windows.net/share  cloud",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestEnvJSONForFixture(t *testing.T) {
	code, out, errOut := runEnv(t, "env", "-o", "json", "--root", envFixtures+"/aks-pod/root", "--cpuid-vendor", "Microsoft Hv", "--arch", "amd64")
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &top); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"schema_version", "root", "arch", "hypervisor", "hypervisor_detail", "nested", "cloud", "cloud_detail", "container", "container_detail", "disks", "mounts", "problems"} {
		if _, ok := top[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	var rep struct {
		SchemaVersion    int    `json:"schema_version"`
		Arch             string `json:"arch"`
		Hypervisor       string `json:"hypervisor"`
		Cloud            string `json:"cloud"`
		Container        string `json:"container"`
		HypervisorDetail struct {
			Physical bool `json:"physical"`
			DMI      struct {
				ChassisAssetTag string `json:"chassis_asset_tag"`
			} `json:"dmi"`
		} `json:"hypervisor_detail"`
		ContainerDetail struct {
			Runtime   string `json:"runtime"`
			ID        string `json:"id"`
			QoS       string `json:"qos_class"`
			Isolation string `json:"isolation"`
		} `json:"container_detail"`
		Problems []any `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SchemaVersion != 1 || rep.Arch != "amd64" || rep.Hypervisor != "microsoft" || rep.Cloud != "azure" || rep.Container != "kubernetes" ||
		rep.HypervisorDetail.Physical || rep.HypervisorDetail.DMI.ChassisAssetTag != "7783-7084-3265-9085-8269-3286-77" ||
		rep.ContainerDetail.Runtime != "containerd" || rep.ContainerDetail.QoS != "guaranteed" || rep.ContainerDetail.Isolation != "namespace" ||
		len(rep.ContainerDetail.ID) != 64 || len(rep.Problems) != 0 {
		t.Errorf("unexpected report: %+v\n%s", rep, out)
	}
}

func TestEnvJSONNoneValues(t *testing.T) {
	code, out, _ := runEnv(t, "env", "-o", "json", "--root", t.TempDir())
	if code != exitcode.OK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{`"hypervisor": "none"`, `"cloud": "none"`, `"container": "none"`, `"physical": true`, `"problems": []`, `"disks": []`} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
}

func TestEnvPIDInFixture(t *testing.T) {
	code, out, _ := runEnv(t, "env", "--root", envFixtures+"/host-pid-lookup/root", "--cpuid-vendor", "KVMKVMKVM", "--pid", "4242", "--no-mounts")
	if code != exitcode.OK || !strings.Contains(out, "Container (pid 4242):   docker (namespace isolation)\n") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	// A PID that is not there is a recorded problem, not a failure.
	code, out, _ = runEnv(t, "env", "--root", envFixtures+"/host-pid-lookup/root", "--pid", "99", "--no-mounts")
	if code != exitcode.OK || !strings.Contains(out, "/proc/99: pid 99: no such process") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

func TestEnvUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"env", "-o", "yaml"},
		{"env", "--cpuid-vendor", "KVMKVMKVM"},
		{"env", "--arch", "arm64"},
		{"env", "--pid", "-3"},
		{"env", "extra"},
	} {
		code, out, errOut := runEnv(t, args...)
		if code != exitcode.Usage || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

func TestEnvLive(t *testing.T) {
	code, out, errOut := runEnv(t, "env", "-o", "json", "--no-mounts")
	if code != exitcode.OK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Hypervisor string `json:"hypervisor"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Hypervisor == "" {
		t.Errorf("%v: %s", err, out)
	}
}

// On the live machine env says whether the bpf backend can run here and,
// when it cannot, why: the same answer the agent's --backend auto gets.
// A captured tree (--root) says nothing about the kernel that reads it.
func TestEnvReportsBPFLSM(t *testing.T) {
	code, out, errOut := runEnv(t, "env", "-o", "json", "--no-mounts")
	if code != exitcode.OK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		BPFLSM *bpflsm.Availability `json:"bpf_lsm"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.BPFLSM == nil || rep.BPFLSM.Reason == "" {
		t.Fatalf("no bpf_lsm report with a reason: %s", out)
	}
	want := probeBPF()
	if rep.BPFLSM.OK != want.OK || rep.BPFLSM.Reason != want.Reason {
		t.Errorf("env says %+v, the probe %+v", *rep.BPFLSM, want)
	}
	code, out, errOut = runEnv(t, "env", "--no-mounts")
	if code != exitcode.OK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "BPF LSM (bpf backend):") || !strings.Contains(out, want.Reason) {
		t.Errorf("the table has no BPF LSM line with the reason %q:\n%s", want.Reason, out)
	}
	code, out, _ = runEnv(t, "env", "-o", "json", "--root", t.TempDir(), "--no-mounts")
	if code == exitcode.OK && strings.Contains(out, "bpf_lsm") {
		t.Errorf("a captured tree's report speaks of this kernel's BPF LSM:\n%s", out)
	}
}
