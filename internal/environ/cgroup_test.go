package environ

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type cgroupWant struct {
	Runtime    string `json:"runtime"`
	ID         string `json:"id"`
	Kubernetes bool   `json:"kubernetes"`
	QoS        string `json:"qos"`
	PodUID     string `json:"pod_uid"`
	Sandbox    string `json:"sandbox"`
}

// TestCgroupCorpus checks every shape of cgroup path in
// testdata/cgroup-corpus.json, one line at a time and as part of a whole
// /proc/PID/cgroup file.
func TestCgroupCorpus(t *testing.T) {
	b, err := os.ReadFile("testdata/cgroup-corpus.json")
	if err != nil {
		t.Fatal(err)
	}
	var corpus []struct {
		Source string     `json:"source"`
		Line   string     `json:"line"`
		Want   cgroupWant `json:"want"`
	}
	if err := json.Unmarshal(b, &corpus); err != nil {
		t.Fatal(err)
	}
	for _, c := range corpus {
		t.Run(c.Source, func(t *testing.T) {
			// Among host lines of a hybrid hierarchy, the container line
			// must still be found.
			file := "13:misc:/\n" + c.Line + "\n0::/\n"
			got, err := ParseCgroup(strings.NewReader(file))
			if err != nil {
				t.Fatalf("ParseCgroup: %v", err)
			}
			g := cgroupWant{got.Runtime, got.ID, got.Kubernetes, got.QoSClass, got.PodUID, got.Sandbox}
			if g != c.Want {
				t.Errorf("%s\n got %+v\nwant %+v", c.Line, g, c.Want)
			}
		})
	}
}

func TestParseCgroupPrefersUnified(t *testing.T) {
	a := strings.Repeat("a", 64)
	b := strings.Repeat("b", 64)
	got, err := ParseCgroup(strings.NewReader("4:memory:/docker/" + a + "\n0::/system.slice/docker-" + b + ".scope\n"))
	if err != nil || got.ID != b {
		t.Fatalf("got %+v, %v; want the 0:: line's id", got, err)
	}
}

func TestParseCgroupBadInput(t *testing.T) {
	id := strings.Repeat("c", 64)
	for _, tc := range []struct {
		name, in string
		wantID   string
	}{
		{"garbage", "\x00\x01\x02 not a cgroup file", ""},
		{"two fields", "1:cpu\n", ""},
		{"non-numeric hierarchy", "x:cpu:/docker/" + id + "\n", ""},
		{"relative path", "1:cpu:docker/" + id + "\n", ""},
		{"garbage before a good line", "@@@\n0::/docker/" + id + "\n", id},
		{"truncated id", "0::/docker/" + id[:10] + "\n", ""},
		{"truncated line", "0::/system.slice/docker-" + id[:40], ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCgroup(strings.NewReader(tc.in))
			if got.ID != tc.wantID {
				t.Errorf("id %q, want %q", got.ID, tc.wantID)
			}
			malformed := strings.Contains(tc.name, "garbage") || strings.Contains(tc.name, "field") || strings.Contains(tc.name, "hierarchy") || strings.Contains(tc.name, "relative")
			if malformed && !errors.Is(err, errMalformed) {
				t.Errorf("err = %v, want malformed", err)
			}
		})
	}
	// A very long line must not stop the scan.
	long := "1:cpu:/" + strings.Repeat("x", 200000) + "\n0::/docker/" + id + "\n"
	if got, _ := ParseCgroup(strings.NewReader(long)); got.ID != id {
		t.Errorf("after a long line: id %q", got.ID)
	}
}

func FuzzParseCgroup(f *testing.F) {
	f.Add("0::/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-" + strings.Repeat("a", 64) + ".scope\n")
	f.Add("1:name=systemd:/machine.slice/machine-a\\x2.scope\n")
	f.Add("0::/lxc.payload.\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseCgroup(strings.NewReader(s))
	})
}
