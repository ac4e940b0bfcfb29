package environ_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/drmfilter/drmfilter/internal/environ"
)

// runtimeWant is testdata/runtimes/<case>/expected.json: what the whole
// /proc/PID/cgroup file of one container process says.
type runtimeWant struct {
	// Name is the top-level answer of Resolver.Lookup (docker, podman,
	// containerd, cri-o, kubernetes, none).
	Name       string `json:"name"`
	Runtime    string `json:"runtime,omitempty"`
	ID         string `json:"id,omitempty"`
	Kubernetes bool   `json:"kubernetes,omitempty"`
	PodUID     string `json:"pod_uid,omitempty"`
	QoS        string `json:"qos,omitempty"`
}

// runtimeCorpusPID is the PID the corpus files are served under.
const runtimeCorpusPID = 4242

// TestRuntimeCgroupCorpus walks testdata/runtimes: every /proc/PID/cgroup
// file of a container process (see testdata/README.md for where each comes
// from) through ParseCgroup, through ContainerFromCgroupPath line by line,
// and through a Resolver reading it as /proc/4242/cgroup.
func TestRuntimeCgroupCorpus(t *testing.T) {
	dirs, err := filepath.Glob("testdata/runtimes/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 20 {
		t.Fatalf("only %d runtime cgroup samples", len(dirs))
	}
	runtimes := map[string]int{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		runtimes[strings.SplitN(name, "-", 2)[0]]++
		t.Run(name, func(t *testing.T) {
			file, err := os.ReadFile(filepath.Join(dir, "cgroup"))
			if err != nil {
				t.Fatal(err)
			}
			want := loadRuntimeWant(t, dir)

			// ParseCgroup over the whole file: every line well formed.
			cg, err := environ.ParseCgroup(bytes.NewReader(file))
			if err != nil {
				t.Fatalf("ParseCgroup: %v", err)
			}
			got := runtimeWant{Name: want.Name, Runtime: cg.Runtime, ID: cg.ID, Kubernetes: cg.Kubernetes, PodUID: cg.PodUID, QoS: cg.QoSClass}
			if got != want {
				t.Errorf("ParseCgroup\n got %+v\nwant %+v", got, want)
			}
			if want.ID != "" && !strings.Contains(cg.Path, want.ID) {
				t.Errorf("Path %q does not hold the ID", cg.Path)
			}

			// Each line alone: the line that names the container gives
			// the same answer as the whole file.
			matched := false
			sc := bufio.NewScanner(bytes.NewReader(file))
			for sc.Scan() {
				_, p, _ := strings.Cut(sc.Text(), ":")
				_, p, _ = strings.Cut(p, ":")
				c := environ.ContainerFromCgroupPath(p)
				if p == cg.Path && c == cg {
					matched = true
				}
			}
			if want.ID != "" && !matched {
				t.Errorf("no line gives ContainerFromCgroupPath = %+v", cg)
			}

			// A Resolver on a file system laid out like the host's /proc.
			fsys := fstest.MapFS{
				"proc/4242/cgroup": {Data: file},
				"proc/4242/stat":   {Data: []byte("4242 (app) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 1 0 0 20 0 1 0 123456 10000 100 18446744073709551615\n")},
			}
			info, probs, err := environ.NewResolverFS(fsys, 0).Lookup(runtimeCorpusPID)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			for _, p := range probs {
				if strings.Contains(p.Path, "cgroup") {
					t.Errorf("problem reading the cgroup file: %+v", p)
				}
			}
			got = runtimeWant{Name: info.Name, Runtime: info.Runtime, ID: info.ID, Kubernetes: info.Kubernetes, PodUID: info.PodUID, QoS: info.QoSClass}
			lookupWant := want
			if want.Runtime == "" && want.Name != environ.RTKubernetes && want.Name != environ.ContainerNone {
				lookupWant.Runtime = want.Name
			}
			if got != lookupWant {
				t.Errorf("Resolver.Lookup\n got %+v\nwant %+v\nsignals %q", got, lookupWant, info.Signals)
			}
			if info.InContainer != (want.Name != environ.ContainerNone) {
				t.Errorf("InContainer = %v for %q", info.InContainer, want.Name)
			}
		})
	}
	for _, rt := range []string{"docker", "podman", "containerd", "crio", "kind", "k3s"} {
		if runtimes[rt] == 0 {
			t.Errorf("no sample of %s in testdata/runtimes", rt)
		}
	}
}

func loadRuntimeWant(t *testing.T, dir string) runtimeWant {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var w runtimeWant
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		t.Fatalf("%s/expected.json: %v", dir, err)
	}
	if w.Name == "" {
		t.Fatalf("%s/expected.json: no name", dir)
	}
	return w
}
