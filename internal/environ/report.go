package environ

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// SchemaVersion is the version of the JSON form of Report. It changes only
// when a field is removed or changes meaning; new fields may appear.
const SchemaVersion = 1

// Problem is something that could not be read or made sense of. Detection
// goes on without it and answers as well as it can.
type Problem struct {
	// Path is the machine path involved (as seen below the root).
	Path string `json:"path"`
	// Error says what went wrong.
	Error string `json:"error"`
}

// Options says what machine to inspect and how.
type Options struct {
	// Root is the directory the machine's / is found at: "/" (the
	// default) for the live machine, "/host" in a pod, or a captured tree.
	Root string
	// FS, when set, is read instead of Root, which is then only reported
	// (and handed to internal/storage for its removable-media check).
	// Otherwise the live machine is read through os.DirFS("/") and any
	// other root through os.OpenRoot, which keeps every read inside it.
	FS fs.FS
	// CPU supplies CPUID. Nil means LiveCPU() when inspecting the live
	// machine ("/"), and no hypervisor bit otherwise.
	CPU CPU
	// Arch is the architecture in Go's spelling (amd64, arm64, ppc64le,
	// s390x...). Empty means runtime.GOARCH on the live machine, and "any
	// architecture" for another root, where every arch-specific source
	// (device tree, /proc/sysinfo) is consulted.
	Arch string
	// PID is the process whose container is reported; 0 means the calling
	// process (for another root: the tree's /proc/self).
	PID int
	// Resolver, when set, answers the PID lookup (and caches it).
	Resolver *Resolver
	// Metadata allows one query of the cloud's instance metadata service
	// (aws, azure, gcp), bounded by MetadataTimeout. Off by default.
	Metadata bool
	// MetadataEndpoint overrides DefaultMetadataEndpoint (tests).
	MetadataEndpoint string
	// MetadataTimeout overrides DefaultMetadataTimeout.
	MetadataTimeout time.Duration
	// HTTPClient is used for the metadata query; nil means a plain client.
	HTTPClient *http.Client
	// NoMounts skips the mount table.
	NoMounts bool
}

// Report is everything Detect found. Its JSON form is stable (see
// SchemaVersion); every top-level name is "none" when absent.
type Report struct {
	// SchemaVersion is SchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// Root is the directory inspected.
	Root string `json:"root"`
	// Arch is the architecture assumed ("" = any).
	Arch string `json:"arch"`
	// Hypervisor is the systemd-detect-virt name of the hypervisor
	// family, "none" on a physical machine.
	Hypervisor string `json:"hypervisor"`
	// HypervisorDetail refines Hypervisor.
	HypervisorDetail HypervisorDetail `json:"hypervisor_detail"`
	// Nested says whether this guest may run guests of its own.
	Nested Nested `json:"nested"`
	// Cloud is the provider id (the Cloud* constants: azure, aws, gcp,
	// oracle, alibaba, openstack...) or "none".
	Cloud string `json:"cloud"`
	// CloudDetail refines Cloud.
	CloudDetail CloudDetail `json:"cloud_detail"`
	// Container is ContainerDetail.Name: "none", a systemd-detect-virt
	// container name, or "kubernetes" for a pod.
	Container string `json:"container"`
	// ContainerDetail describes the container of Options.PID.
	ContainerDetail ContainerInfo `json:"container_detail"`
	// Disks lists /sys/block.
	Disks []Disk `json:"disks"`
	// Mounts lists the mount table of Options.PID with storage classes;
	// null when not read (Options.NoMounts), [] when there was none.
	Mounts []Mount `json:"mounts"`
	// Problems lists everything that could not be read or parsed.
	Problems []Problem `json:"problems"`
}

// Live reports whether o inspects the machine this code runs on.
func (o Options) live() bool {
	if o.FS != nil {
		return false
	}
	if o.Root == "" || o.Root == "/" {
		return true
	}
	abs, err := filepath.Abs(o.Root)
	return err == nil && abs == "/"
}

// Detect inspects the machine below opts.Root. It never fails: what cannot
// be read is recorded in Report.Problems and the rest is answered.
func Detect(ctx context.Context, opts Options) Report {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	live := opts.live()
	var rootProblem *Problem
	fsys := opts.FS
	switch {
	case fsys != nil:
	case live:
		fsys = os.DirFS("/")
	default:
		// Another machine's tree: confine every read to it, so that an
		// absolute symbolic link in a captured tree cannot reach the live
		// machine (os.Root refuses to leave the directory).
		rt, err := os.OpenRoot(root)
		if err != nil {
			rootProblem = &Problem{Path: root, Error: fmt.Sprintf("root: %v", err)}
			fsys = emptyFS{}
		} else {
			defer rt.Close()
			fsys = rt.FS()
		}
	}
	arch := opts.Arch
	if arch == "" && live {
		arch = runtime.GOARCH
	}
	arch = normalizeArch(arch)
	cpuSrc := opts.CPU
	if cpuSrc == nil {
		if live {
			cpuSrc = LiveCPU()
		} else {
			cpuSrc = VendorCPU("")
		}
	}
	r := &sysReader{fsys: fsys}
	if rootProblem != nil {
		r.problems = append(r.problems, *rootProblem)
	} else if _, err := fs.Stat(fsys, "."); err != nil {
		r.problems = append(r.problems, Problem{Path: root, Error: fmt.Sprintf("root: %v", err)})
	}
	cpu, err := cpuSrc.Info()
	if err != nil {
		r.problems = append(r.problems, Problem{Path: "cpuid", Error: err.Error()})
	}

	rep := Report{SchemaVersion: SchemaVersion, Root: root, Arch: arch}
	dmi := readDMI(r)
	ci := readCPUInfo(r)
	rep.Hypervisor, rep.HypervisorDetail = detectHypervisor(r, cpu, arch, dmi, ci)
	rep.Nested = detectNested(r, cpu, rep.Hypervisor, ci)
	rep.Cloud, rep.CloudDetail = detectCloud(r, dmi, rep.Hypervisor)
	if opts.Metadata && rep.Cloud != CloudNone {
		rep.CloudDetail.Metadata = queryMetadata(ctx, rep.Cloud, opts.MetadataEndpoint, opts.MetadataTimeout, opts.HTTPClient)
	}

	if opts.PID > 0 {
		res := opts.Resolver
		if res == nil {
			res = NewResolverFS(fsys, 1)
		}
		info, probs, err := res.Lookup(opts.PID)
		r.problems = append(r.problems, probs...)
		if err != nil {
			r.problems = append(r.problems, Problem{Path: fmt.Sprintf("/proc/%d", opts.PID), Error: err.Error()})
			info = ContainerInfo{PID: opts.PID, Name: ContainerNone, Isolation: IsolationNone, Signals: []string{}}
		}
		rep.ContainerDetail = info
	} else {
		rep.ContainerDetail = detectContainer(r, 0, true)
	}
	rep.Container = rep.ContainerDetail.Name

	rep.Disks = readDisks(r)
	if !opts.NoMounts {
		rep.Mounts = readMounts(r, root, opts.PID)
	}
	rep.Problems = r.problems
	if rep.Problems == nil {
		rep.Problems = []Problem{}
	}
	return rep
}

// emptyFS has no files; it stands in for a root that cannot be opened.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// normalizeArch accepts uname spellings too.
func normalizeArch(a string) string {
	switch a {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	case "i386", "i686":
		return "386"
	case "armv7l", "armv6l":
		return "arm"
	}
	return a
}
