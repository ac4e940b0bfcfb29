package environ

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/fixtures/*/expected.json from the current answers")

// fixtureCase is testdata/fixtures/<name>/case.json: what the machine's
// processor said, since CPUID is not a file.
type fixtureCase struct {
	CPUIDVendor string `json:"cpuid_vendor"`
	Arch        string `json:"arch"`
	VMX         bool   `json:"vmx"`
	SVM         bool   `json:"svm"`
	PID         int    `json:"pid"`
	Source      string `json:"source"`
}

// summary is the part of a Report that expected.json pins down.
type summary struct {
	Hypervisor   string            `json:"hypervisor"`
	VMM          string            `json:"vmm,omitempty"`
	Physical     bool              `json:"physical"`
	Xen          string            `json:"xen,omitempty"`
	Nested       bool              `json:"nested"`
	Cloud        string            `json:"cloud"`
	BareMetal    bool              `json:"bare_metal,omitempty"`
	InstanceType string            `json:"instance_type,omitempty"`
	InstanceID   string            `json:"instance_id,omitempty"`
	Container    string            `json:"container"`
	Runtime      string            `json:"runtime,omitempty"`
	ContainerID  string            `json:"container_id,omitempty"`
	PodUID       string            `json:"pod_uid,omitempty"`
	QoS          string            `json:"qos,omitempty"`
	Isolation    string            `json:"isolation"`
	Sandbox      string            `json:"sandbox,omitempty"`
	Disks        map[string]string `json:"disks,omitempty"`
	Problems     int               `json:"problems"`
}

func summarize(r Report) summary {
	s := summary{
		Hypervisor:   r.Hypervisor,
		VMM:          r.HypervisorDetail.VMM,
		Physical:     r.HypervisorDetail.Physical,
		Nested:       r.Nested.Available,
		Cloud:        r.Cloud,
		BareMetal:    r.CloudDetail.BareMetal,
		InstanceType: r.CloudDetail.InstanceType,
		InstanceID:   r.CloudDetail.InstanceID,
		Container:    r.Container,
		Runtime:      r.ContainerDetail.Runtime,
		ContainerID:  r.ContainerDetail.ID,
		PodUID:       r.ContainerDetail.PodUID,
		QoS:          r.ContainerDetail.QoSClass,
		Isolation:    r.ContainerDetail.Isolation,
		Sandbox:      r.ContainerDetail.Sandbox,
		Problems:     len(r.Problems),
	}
	if x := r.HypervisorDetail.Xen; x != nil {
		s.Xen = x.Role
		if x.Mode != "" {
			s.Xen += "/" + x.Mode
		}
	}
	if len(r.Disks) > 0 {
		s.Disks = map[string]string{}
		for _, d := range r.Disks {
			s.Disks[d.Name] = d.Kind
		}
	}
	return s
}

func loadCase(t testing.TB, dir string) fixtureCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c fixtureCase
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s/case.json: %v", dir, err)
	}
	return c
}

func detectFixture(t testing.TB, dir string) Report {
	c := loadCase(t, dir)
	return Detect(context.Background(), Options{
		Root:     filepath.Join(dir, "root"),
		CPU:      FixedCPU{HypervisorBit: c.CPUIDVendor != "", HypervisorVendor: c.CPUIDVendor, VMX: c.VMX, SVM: c.SVM},
		Arch:     c.Arch,
		PID:      c.PID,
		NoMounts: true,
	})
}

// TestFixtures walks every captured environment in testdata/fixtures and
// compares the answer with its expected.json.
func TestFixtures(t *testing.T) {
	dirs, err := filepath.Glob("testdata/fixtures/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 25 {
		t.Fatalf("only %d fixture environments, want at least 25", len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			rep := detectFixture(t, dir)
			got := summarize(rep)
			path := filepath.Join(dir, "expected.json")
			if *update {
				b, _ := json.MarshalIndent(got, "", "  ")
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want summary
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&want); err != nil {
				t.Fatalf("expected.json: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", "  ")
				t.Errorf("answer differs from expected.json\n got: %s\nwant: %s\nhypervisor signals: %q\ncontainer signals: %q\nproblems: %v",
					gj, b, rep.HypervisorDetail.Signals, rep.ContainerDetail.Signals, rep.Problems)
			}
		})
	}
}
