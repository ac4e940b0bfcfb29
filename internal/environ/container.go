package environ

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Isolation kinds.
const (
	IsolationNone      = "none"
	IsolationNamespace = "namespace"
	IsolationVM        = "vm"
)

// ErrNoProcess is returned by Lookup for a PID that does not exist (or no
// longer does).
var ErrNoProcess = errors.New("no such process")

// ContainerInfo says whether a process runs in a container, and which.
type ContainerInfo struct {
	// PID is the process asked about; 0 means the calling process.
	PID int `json:"pid"`
	// InContainer is true when any signal placed the process in a
	// container.
	InContainer bool `json:"in_container"`
	// Name is the top-level answer: none, docker, podman, containerd,
	// cri-o, lxc, lxc-libvirt, systemd-nspawn, wsl, openvz, rkt, proot,
	// pouch, kubernetes (a pod, whatever the engine) or container-other.
	Name string `json:"name"`
	// Runtime is the engine: the same as Name outside Kubernetes; for a
	// pod, the engine that runs it (containerd, cri-o, docker) when known.
	Runtime string `json:"runtime,omitempty"`
	// ID is the container ID.
	ID string `json:"id,omitempty"`
	// Kubernetes is true for a pod.
	Kubernetes bool `json:"kubernetes"`
	// PodUID is the pod's UID, from the cgroup path.
	PodUID string `json:"pod_uid,omitempty"`
	// QoSClass is guaranteed, burstable or besteffort, from the cgroup
	// path.
	QoSClass string `json:"qos_class,omitempty"`
	// Isolation is "namespace" for ordinary containers, "vm" for
	// VM-isolated ones (Kata, gVisor), "none" outside a container.
	Isolation string `json:"isolation"`
	// Sandbox names the VM-isolating runtime: kata or gvisor.
	Sandbox string `json:"sandbox,omitempty"`
	// CgroupPath is the cgroup path that named the container.
	CgroupPath string `json:"cgroup_path,omitempty"`
	// Signals lists the evidence used, most decisive first.
	Signals []string `json:"signals"`
}

// translateManager maps the value of $container (or of
// /run/host/container-manager, /run/systemd/container) to a name as systemd
// does: its own names pass, anything else is container-other. "openvz" is
// not one of them (OpenVZ is told by /proc/vz), so it is container-other
// too. The one refinement: CRI-O and containerd, which systemd lumps into
// container-other, keep the engine names this package reports for them
// from cgroup paths.
func translateManager(v string) string {
	switch v {
	case RTDocker, RTPodman, RTLXC, RTLXCLibvirt, RTNspawn, RTWSL, RTRkt, RTProot, RTPouch:
		return v
	case "crio", "cri-o":
		return RTCRIO
	case "containerd":
		return RTContainerd
	}
	return RTContainerOther
}

// tracedByProot reports whether the process whose status file is given
// runs under proot, which uses ptrace rather than namespaces: its tracer's
// command name starts with "proot".
func tracedByProot(r *sysReader, status string) (bool, string) {
	b, err := r.read(status, smallFile)
	if err != nil {
		return false, ""
	}
	for _, ln := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(ln, "TracerPid:")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || pid <= 0 {
			return false, ""
		}
		comm := r.line("/proc/" + strconv.Itoa(pid) + "/comm")
		if strings.HasPrefix(comm, "proot") {
			return true, status + " TracerPid " + strconv.Itoa(pid) + " is " + strconv.Quote(comm)
		}
		return false, ""
	}
	return false, ""
}

// inCgroupNamespace reports whether the cgroup file system at /sys/fs/cgroup
// shows a cgroup other than the root, which a private cgroup namespace does
// and a host never does. It is systemd's last sign of a container; the
// files it looks at are those systemd's running_in_cgroupns() looks at.
func inCgroupNamespace(r *sysReader) string {
	if !r.exists("/proc/self/ns/cgroup") && r.readlink("/proc/self/ns/cgroup") == "" {
		return "" // kernel without cgroup namespaces
	}
	const cg = "/sys/fs/cgroup/"
	if r.exists(cg + "cgroup.controllers") {
		// cgroup v2 mounted at /sys/fs/cgroup: the root cgroup has no
		// cgroup.events, and no kernel gives it a cgroup.type.
		switch {
		case !r.exists(cg + "cgroup.events"):
			return ""
		case r.exists(cg + "cgroup.type"):
			return cg + "cgroup.type exists: not the root cgroup (cgroup namespace)"
		case !r.exists("/sys/kernel/cgroup/features"):
			// A kernel too old for cgroup.type, where cgroup.events
			// exists only below the root.
			return cg + "cgroup.events exists on an old kernel: not the root cgroup (cgroup namespace)"
		}
		return ""
	}
	// cgroup v1: release_agent exists only in the root of a hierarchy.
	if r.exists(cg+"systemd") && !r.exists(cg+"systemd/release_agent") {
		return cg + "systemd has no release_agent: not the root cgroup (cgroup namespace)"
	}
	return ""
}

// environValue returns the value of key in a NUL-separated environment
// block.
func environValue(b []byte, key string) (string, bool) {
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte{'='}); ok && string(k) == key {
			return string(v), true
		}
	}
	return "", false
}

// gVisor's sentry reports this fixed kernel version (pkg/sentry/fsimpl/proc).
const gvisorVersion = "#1 SMP Sun Jan 10 15:06:54 PST 2016"

// mountHints is what a mount table says about the container it belongs to.
type mountHints struct {
	runtime string // docker or podman (containers/storage, also CRI-O's)
	id      string // container whose /etc/hostname is bind-mounted
	podUID  string // from kubelet's /var/lib/kubelet/pods/<uid>/ bind mounts
	kata    bool   // root on Kata's "kataShared" virtiofs share
}

// mountinfoHints scans a mountinfo for the bind mounts engines make of
// /etc/hostname, /etc/hosts and friends, whose source path names the
// container or the pod, and for Kata's shared virtiofs root.
func mountinfoHints(b []byte) mountHints {
	var h mountHints
	after := func(root, marker string) string {
		i := strings.Index(root, marker)
		if i < 0 {
			return ""
		}
		c, _, _ := strings.Cut(root[i+len(marker):], "/")
		return c
	}
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) < 5 {
			continue
		}
		root := f[3]
		if strings.Contains(ln, " kataShared ") {
			h.kata = true
		}
		if h.podUID == "" {
			if u := after(root, "/kubelet/pods/"); len(u) == 36 {
				h.podUID = u
			}
		}
		if h.runtime != "" {
			continue
		}
		if c := after(root, "/docker/containers/"); isHexID(c) {
			h.runtime, h.id = RTDocker, c
		} else if c := after(root, "/overlay-containers/"); isHexID(c) {
			h.runtime, h.id = RTPodman, c
		}
	}
	return h
}

// detectContainer inspects one process. self selects the whole-system
// signals (WSL, OpenVZ, /run/host, marker files at the root) that describe
// the calling process's own environment; other PIDs are judged by their
// cgroup, environment, root and namespaces.
func detectContainer(r *sysReader, pid int, self bool) ContainerInfo {
	return detectContainerOwned(r, pid, self, nil)
}

// detectContainerOwned is detectContainer believing the container a cgroup
// path names only when owners says root named it (a nil owners believes
// every name). A name not believed is recorded as a problem and a signal,
// and its ID, runtime and pod are not used.
func detectContainerOwned(r *sysReader, pid int, self bool, owners *CgroupOwners) ContainerInfo {
	ci := ContainerInfo{PID: pid, Signals: []string{}}
	proc := "/proc/self"
	if pid > 0 {
		proc = "/proc/" + strconv.Itoa(pid)
	}
	add := func(s string) { ci.Signals = append(ci.Signals, s) }
	name := ""
	wsl := false
	setName := func(n, sig string) {
		if name == "" {
			name = n
		}
		add(sig)
	}

	// oci is set when a manager said only "oci", which names no engine:
	// systemd then trusts the marker files, and says container-other
	// without one.
	oci := false
	manager := func(v, sig string) {
		if v == "oci" {
			oci = true
			add(sig + " (names no engine)")
			return
		}
		setName(translateManager(v), sig)
	}
	if self {
		if r.exists("/proc/vz") && !r.exists("/proc/bc") {
			setName(RTOpenVZ, "/proc/vz without /proc/bc")
		}
		if o := r.line("/proc/sys/kernel/osrelease"); strings.Contains(o, "Microsoft") || strings.Contains(o, "microsoft") || strings.Contains(o, "WSL") {
			// systemd stops here; we let a container engine's own marker
			// win, since Docker Desktop runs its containers on the WSL
			// kernel too. systemd also misses the lower-case "microsoft"
			// of early WSL 2 kernels, which say no "WSL".
			wsl = true
			add("osrelease=" + strconv.Quote(o))
		}
	}
	// proot traces instead of using namespaces, so it is asked of every
	// process, not only of this one.
	if ok, sig := tracedByProot(r, proc+"/status"); ok {
		setName(RTProot, sig)
	}
	if self {
		for _, f := range []string{"/run/host/container-manager", "/run/systemd/container"} {
			if m := r.line(f); m != "" {
				manager(m, f+"="+strconv.Quote(m))
			}
		}
	}
	// $container of PID 1 (self) or of the process itself.
	envOf := "/proc/1/environ"
	if !self {
		envOf = proc + "/environ"
	}
	env, _ := r.read(envOf, largeFile)
	if v, ok := environValue(env, "container"); ok && v != "" {
		manager(v, envOf+" container="+v)
	}
	// Marker files engines drop at the container's root.
	rootDir := ""
	if !self {
		rootDir = proc + "/root"
	}
	if r.exists(rootDir + "/run/.containerenv") {
		setName(RTPodman, rootDir+"/run/.containerenv exists")
	}
	if r.exists(rootDir + "/.dockerenv") {
		setName(RTDocker, rootDir+"/.dockerenv exists")
	}

	// cgroup path.
	var cg CgroupContainer
	if b, err := r.read(proc+"/cgroup", largeFile); err == nil {
		var (
			perr error
			line CgroupLine
		)
		cg, line, perr = ParseCgroupLine(bytes.NewReader(b))
		if perr != nil {
			r.note(proc+"/cgroup", perr)
		}
		if cg.found() {
			if err := owners.Check(line); err != nil {
				r.note(proc+"/cgroup", err)
				add("cgroup " + cg.Path + " not believed: " + err.Error())
				cg = CgroupContainer{}
			}
		}
		if cg.found() {
			ci.CgroupPath = cg.Path
			ci.ID = cg.ID
			ci.Runtime = cg.Runtime
			ci.Kubernetes = cg.Kubernetes
			ci.PodUID, ci.QoSClass = cg.PodUID, cg.QoSClass
			ci.Sandbox = cg.Sandbox
			if cg.Runtime != "" {
				setName(cg.Runtime, "cgroup "+cg.Path)
			} else {
				add("cgroup " + cg.Path)
			}
		}
	}

	// Kubernetes.
	own, _ := r.read(proc+"/environ", largeFile)
	if _, ok := environValue(own, "KUBERNETES_SERVICE_HOST"); ok {
		ci.Kubernetes = true
		add(proc + "/environ has KUBERNETES_SERVICE_HOST")
	}
	if r.exists(rootDir + "/var/run/secrets/kubernetes.io") {
		ci.Kubernetes = true
		add(rootDir + "/var/run/secrets/kubernetes.io exists")
	}

	// Mount table hints: container ID from bind-mount sources, pod UID,
	// Kata root.
	kata := false
	if mi, err := r.read(proc+"/mountinfo", largeFile); err == nil {
		h := mountinfoHints(mi)
		kata = h.kata
		if h.podUID != "" {
			ci.Kubernetes = true
			if ci.PodUID == "" {
				ci.PodUID = h.podUID
			}
			add(proc + "/mountinfo has kubelet pod " + h.podUID)
		}
		switch {
		case h.runtime == "":
		case ci.Kubernetes:
			// In a pod the hostname file belongs to the sandbox (pause)
			// container, so the ID is not this container's; and
			// containers/storage under Kubernetes is CRI-O's.
			rt := h.runtime
			if rt == RTPodman {
				rt = RTCRIO
			}
			if ci.Runtime == "" {
				ci.Runtime = rt
			}
			add(proc + "/mountinfo bind mounts from " + rt)
		default:
			if ci.ID == "" {
				ci.ID = h.id
			}
			if ci.Runtime == "" {
				ci.Runtime = h.runtime
			}
			setName(h.runtime, proc+"/mountinfo bind mount from "+h.runtime+" container "+h.id[:12])
		}
	}

	// Isolation.
	switch {
	case ci.Sandbox == "kata" || kata:
		ci.Sandbox = "kata"
		add("kata: cgroup kata_ or kataShared virtiofs mount")
	case self && strings.Contains(r.line("/proc/version"), gvisorVersion):
		ci.Sandbox = "gvisor"
		add("/proc/version is gVisor's")
	case !self && pid > 0:
		if cmd, _ := r.read(proc+"/cmdline", smallFile); len(cmd) > 0 {
			argv0, _, _ := bytes.Cut(cmd, []byte{0})
			switch base := path.Base(string(argv0)); {
			case base == "runsc-sandbox" || base == "runsc-gofer":
				ci.Sandbox = "gvisor"
				add(proc + "/cmdline is " + base)
			case strings.HasPrefix(base, "containerd-shim-kata"):
				ci.Sandbox = "kata"
				add(proc + "/cmdline is " + base)
			}
		}
	}

	// A PID in another mount namespace than PID 1, with nothing else said.
	if !self && name == "" && !ci.Kubernetes && ci.Sandbox == "" {
		a, b := r.readlink(proc+"/ns/mnt"), r.readlink("/proc/1/ns/mnt")
		if a != "" && b != "" && a != b {
			setName(RTContainerOther, "mount namespace "+a+" differs from PID 1's "+b)
		}
	}

	if wsl && name == "" {
		name = RTWSL
	}
	if oci && name == "" && !ci.Kubernetes {
		name = RTContainerOther
	}
	// Last, as in systemd: a private cgroup namespace with nothing else
	// said. (Other PIDs were judged by their mount namespace above.)
	if self && name == "" && !ci.Kubernetes && ci.Sandbox == "" {
		if sig := inCgroupNamespace(r); sig != "" {
			setName(RTContainerOther, sig)
		}
	}
	if ci.Kubernetes {
		if ci.Runtime == "" && name != "" && name != RTContainerOther {
			ci.Runtime = name
		}
		name = RTKubernetes
	}
	if name == "" && ci.Sandbox != "" {
		name = RTContainerOther
	}
	if name == "" {
		name = ContainerNone
	}
	ci.Name = name
	ci.InContainer = name != ContainerNone
	if ci.Runtime == "" && ci.InContainer && !ci.Kubernetes {
		ci.Runtime = name
	}
	switch {
	case !ci.InContainer:
		ci.Isolation = IsolationNone
	case ci.Sandbox != "":
		ci.Isolation = IsolationVM
	case name == RTWSL:
		// WSL 2 distributions share one utility VM; WSL 1 has no kernel.
		ci.Isolation = IsolationNamespace
	default:
		ci.Isolation = IsolationNamespace
	}
	return ci
}

// processStart returns the start time (field 22 of /proc/PID/stat) that,
// with the PID, identifies a process across PID reuse.
func processStart(fsys fs.FS, pid int) (uint64, error) {
	b, err := fs.ReadFile(fsys, rel("/proc/"+strconv.Itoa(pid)+"/stat"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
		}
		return 0, fmt.Errorf("pid %d: read stat: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: stat: %w", pid, errMalformed)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("pid %d: stat: %d fields: %w", pid, len(f)+2, errMalformed)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pid %d: stat starttime: %w", pid, err)
	}
	return v, nil
}

// Resolver answers per-PID container lookups and caches them, keyed by PID
// and process start time so that a reused PID is looked up afresh. It is
// safe for concurrent use.
type Resolver struct {
	fsys   fs.FS
	max    int
	owners *CgroupOwners // nil: cgroup names are believed

	mu      sync.Mutex
	entries map[int]cacheEntry
}

type cacheEntry struct {
	start uint64
	info  ContainerInfo
	probs []Problem
}

// DefaultCacheSize bounds a Resolver made with size 0.
const DefaultCacheSize = 4096

// NewResolver makes a Resolver reading the machine below root ("/" for the
// live machine), remembering at most size processes (DefaultCacheSize when
// size <= 0). When root/proc is a live proc file system, a container named
// by a cgroup path is believed only if root named that cgroup
// (CgroupOwners).
func NewResolver(root string, size int) *Resolver {
	c := NewResolverFS(os.DirFS(root), size)
	c.owners = NewCgroupOwners(root)
	return c
}

// NewResolverFS is NewResolver over any file system laid out like "/". It
// believes the names of cgroup paths: an fs.FS cannot show who owns a
// cgroup.
func NewResolverFS(fsys fs.FS, size int) *Resolver {
	if size <= 0 {
		size = DefaultCacheSize
	}
	return &Resolver{fsys: fsys, max: size, entries: map[int]cacheEntry{}}
}

// Lookup tells whether process pid runs in a container. The answer is
// cached until the PID is reused. Problems met while reading are returned
// beside a best-effort answer; a vanished process gives ErrNoProcess.
func (c *Resolver) Lookup(pid int) (ContainerInfo, []Problem, error) {
	if pid <= 0 {
		return ContainerInfo{}, nil, fmt.Errorf("pid %d: %w", pid, ErrNoProcess)
	}
	start, err := processStart(c.fsys, pid)
	if err != nil {
		return ContainerInfo{}, nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[pid]
	c.mu.Unlock()
	if ok && e.start == start {
		return e.info, e.probs, nil
	}
	r := &sysReader{fsys: c.fsys}
	info := detectContainerOwned(r, pid, false, c.owners)
	c.mu.Lock()
	if len(c.entries) >= c.max {
		// Drop an arbitrary half: cheap, and entries are cheap to rebuild.
		n := 0
		for k := range c.entries {
			delete(c.entries, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.entries[pid] = cacheEntry{start: start, info: info, probs: r.problems}
	c.mu.Unlock()
	return info, r.problems, nil
}

// Forget drops pid from the cache (call it on process exit).
func (c *Resolver) Forget(pid int) {
	c.mu.Lock()
	delete(c.entries, pid)
	c.mu.Unlock()
}

// Len is the number of cached processes.
func (c *Resolver) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
