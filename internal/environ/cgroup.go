package environ

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Container runtimes and the top-level container names. Names shared with
// systemd-detect-virt --container are spelled as it spells them.
const (
	ContainerNone    = "none"
	RTDocker         = "docker"
	RTPodman         = "podman"
	RTContainerd     = "containerd"
	RTCRIO           = "cri-o"
	RTLXC            = "lxc"
	RTLXCLibvirt     = "lxc-libvirt"
	RTNspawn         = "systemd-nspawn"
	RTWSL            = "wsl"
	RTOpenVZ         = "openvz"
	RTRkt            = "rkt"
	RTProot          = "proot"
	RTPouch          = "pouch"
	RTKubernetes     = "kubernetes"
	RTContainerOther = "container-other"
)

// CgroupContainer is what the cgroup path of a process says about its
// container.
type CgroupContainer struct {
	// Runtime is the engine that named the cgroup: docker, podman,
	// containerd, cri-o, lxc, lxc-libvirt, systemd-nspawn; empty when the
	// shape does not tell (a Kubernetes pod under the cgroupfs driver).
	Runtime string `json:"runtime,omitempty"`
	// ID is the container ID (64 hex digits for OCI engines, the
	// container name for LXC and systemd-nspawn).
	ID string `json:"id,omitempty"`
	// Kubernetes is true when the path is under kubepods.
	Kubernetes bool `json:"kubernetes,omitempty"`
	// PodUID is the pod UID, dashes restored from the systemd driver's
	// underscores.
	PodUID string `json:"pod_uid,omitempty"`
	// QoSClass is guaranteed, burstable or besteffort for pods.
	QoSClass string `json:"qos_class,omitempty"`
	// Sandbox is "kata" when the cgroup belongs to a Kata sandbox.
	Sandbox string `json:"sandbox,omitempty"`
	// Path is the cgroup path the answer came from.
	Path string `json:"path,omitempty"`
}

func (c CgroupContainer) found() bool { return c.Runtime != "" || c.ID != "" || c.Kubernetes }

// ParseCgroup reads /proc/PID/cgroup (cgroups(7): "hierarchy-ID:controller-list:path"
// per line, v1 and v2 mixed) and returns the container its paths name. The
// unified ("0::") line is preferred, then the v1 lines in order. Malformed
// lines are skipped and reported in the error, next to the best-effort
// answer.
//
// The answer says what the path's names claim, and anyone who may create
// a cgroup may choose its name: CgroupOwners.Check tells whether only root
// could have (ParseCgroupLine gives the line it needs).
func ParseCgroup(rd io.Reader) (CgroupContainer, error) {
	c, _, err := ParseCgroupLine(rd)
	return c, err
}

// CgroupLine is the line of /proc/PID/cgroup a CgroupContainer was read
// from.
type CgroupLine struct {
	// Hierarchy is the hierarchy ID: 0 for the unified (v2) hierarchy.
	Hierarchy int
	// Controllers is the comma-separated controller list of a v1
	// hierarchy ("cpu,cpuacct", "name=systemd"); empty for v2.
	Controllers string
	// Path is the cgroup path, relative to the root of the cgroup
	// namespace of the process that read the file (cgroup_namespaces(7)):
	// "/../.." steps lead out of it.
	Path string
}

// ParseCgroupLine is ParseCgroup, also returning the line the answer came
// from (the zero CgroupLine when no line names a container).
func ParseCgroupLine(rd io.Reader) (CgroupContainer, CgroupLine, error) {
	var (
		best     CgroupContainer
		bestLine CgroupLine
		unified  = false
		bad      int
		first    string
	)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		ln := sc.Text()
		if ln == "" {
			continue
		}
		parts := strings.SplitN(ln, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			bad++
			if first == "" {
				first = ln
			}
			continue
		}
		hier, err := strconv.Atoi(parts[0])
		if err != nil {
			bad++
			if first == "" {
				first = ln
			}
			continue
		}
		c := ContainerFromCgroupPath(parts[2])
		line := CgroupLine{Hierarchy: hier, Controllers: parts[1], Path: parts[2]}
		isUnified := parts[0] == "0" && parts[1] == ""
		switch {
		case !c.found():
		case isUnified && !unified:
			best, bestLine, unified = c, line, true
		case !best.found():
			best, bestLine = c, line
		}
	}
	var err error
	if e := sc.Err(); e != nil {
		err = fmt.Errorf("cgroup: read: %w", e)
	} else if bad > 0 {
		if len(first) > 80 {
			first = first[:80] + "..."
		}
		err = fmt.Errorf("cgroup: %d malformed line(s), first %q: %w", bad, first, errMalformed)
	}
	return best, bestLine, err
}

var errMalformed = errors.New("malformed")

// isHexID accepts the 64-hex-digit IDs of OCI engines (docker, containerd,
// cri-o, podman, kata all use them); anything shorter is a truncated line.
func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// scopeID matches "<prefix><hexid>.scope" (the systemd cgroup driver) and,
// with the suffix optional, the cgroupfs form "<prefix><hexid>".
func scopeID(seg, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(seg, prefix)
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, ".scope")
	if isHexID(rest) {
		return rest, true
	}
	return "", false
}

// unescapeSystemd undoes systemd's unit-name escaping of "-" and others
// ("\x2d").
func unescapeSystemd(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ContainerFromCgroupPath recognises the cgroup paths that container
// engines create. The outermost container wins (docker-in-docker shows the
// host's container).
func ContainerFromCgroupPath(p string) CgroupContainer {
	c, _ := containerFromCgroupPath(p)
	return c
}

// containerFromCgroupPath is ContainerFromCgroupPath, also returning the
// depth in p of the directory whose name said the most: how many of p's
// segments lead to the one carrying the ID (docker-<id>.scope, or <id>
// below docker/), or, for a pod without one, to its last Kubernetes
// segment. Zero when nothing was found.
func containerFromCgroupPath(p string) (CgroupContainer, int) {
	c := CgroupContainer{}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	// containerd with the systemd cgroup driver under a kubelet using
	// cgroupfs writes "<pod slice>:<prefix>:<id>" as one segment; read it
	// as the slice followed by the usual "<prefix>-<id>.scope". orig maps
	// the segments back to p's once one is split.
	var orig []int
	for i := 0; i < len(segs); i++ {
		if slice, rest, ok := strings.Cut(segs[i], ".slice:"); ok {
			if prefix, id, ok := strings.Cut(rest, ":"); ok {
				if orig == nil {
					orig = make([]int, len(segs))
					for j := range orig {
						orig[j] = j
					}
				}
				segs = append(segs[:i], append([]string{slice + ".slice", prefix + "-" + id + ".scope"}, segs[i+1:]...)...)
				orig = append(orig[:i+1], append([]int{orig[i]}, orig[i+1:]...)...)
			}
		}
	}
	depth := func(i int) int {
		if orig == nil {
			return i + 1
		}
		return orig[i] + 1
	}
	kdepth := 0
	for i, seg := range segs {
		next := ""
		if i+1 < len(segs) {
			next = segs[i+1]
		}
		// Kubernetes pods: kubepods[/burstable|/besteffort]/pod<uid>/<id>
		// (cgroupfs) or kubepods.slice/kubepods-<qos>.slice/
		// kubepods-<qos>-pod<uid>.slice/<engine>-<id>.scope (systemd).
		// With --cgroup-root (kind runs its kubelet with /kubelet) the
		// systemd driver prefixes every slice: kubelet-kubepods-....slice.
		if seg == "kubepods" || strings.HasPrefix(seg, "kubepods.slice") || strings.HasPrefix(seg, "kubepods-") ||
			(strings.HasSuffix(seg, ".slice") && (strings.HasSuffix(seg, "-kubepods.slice") || strings.Contains(seg, "-kubepods-"))) {
			c.Kubernetes = true
			if c.QoSClass == "" {
				c.QoSClass = "guaranteed"
			}
			switch {
			case strings.Contains(seg, "burstable"):
				c.QoSClass = "burstable"
			case strings.Contains(seg, "besteffort"):
				c.QoSClass = "besteffort"
			}
			if j := strings.LastIndex(seg, "-pod"); j >= 0 && strings.HasSuffix(seg, ".slice") {
				c.PodUID = strings.ReplaceAll(strings.TrimSuffix(seg[j+4:], ".slice"), "_", "-")
			}
			kdepth = depth(i)
			continue
		}
		if c.Kubernetes {
			switch {
			case seg == "burstable" || seg == "besteffort":
				c.QoSClass = seg
				kdepth = depth(i)
				continue
			case strings.HasPrefix(seg, "pod") && c.PodUID == "" && len(seg) > 3:
				c.PodUID = seg[3:]
				kdepth = depth(i)
				continue
			}
		}
		if id, ok := scopeID(seg, "docker-"); ok {
			return done(c, RTDocker, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "cri-containerd-"); ok {
			return done(c, RTContainerd, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "crio-conmon-"); ok {
			return done(c, RTCRIO, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "crio-"); ok {
			return done(c, RTCRIO, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "libpod-conmon-"); ok {
			return done(c, RTPodman, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "libpod-"); ok {
			return done(c, RTPodman, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "nerdctl-"); ok {
			return done(c, RTContainerd, id, p), depth(i)
		}
		if id, ok := scopeID(seg, "kata_"); ok {
			c.Sandbox = "kata"
			return done(c, "", id, p), depth(i)
		}
		switch {
		case seg == "docker" && isHexID(next):
			return done(c, RTDocker, next, p), depth(i + 1)
		case seg == "ecs" && i+2 < len(segs) && isHexID(segs[i+2]):
			// Amazon ECS on EC2: /ecs/<task id>/<docker id>.
			return done(c, RTDocker, segs[i+2], p), depth(i + 2)
		case seg == "lxc" && next != "":
			return done(c, RTLXC, next, p), depth(i + 1)
		case strings.HasPrefix(seg, "lxc.payload.") && len(seg) > len("lxc.payload."):
			return done(c, RTLXC, seg[len("lxc.payload."):], p), depth(i)
		case seg == "lxc.payload" && next != "":
			return done(c, RTLXC, next, p), depth(i + 1)
		case strings.HasPrefix(seg, "machine-") && strings.HasSuffix(seg, ".scope"):
			name := unescapeSystemd(strings.TrimSuffix(strings.TrimPrefix(seg, "machine-"), ".scope"))
			switch {
			case strings.HasPrefix(name, "qemu-"):
				// A libvirt virtual machine, not a container.
			case strings.HasPrefix(name, "lxc-"):
				return done(c, RTLXCLibvirt, strings.TrimPrefix(name, "lxc-"), p), depth(i)
			default:
				return done(c, RTNspawn, name, p), depth(i)
			}
		}
		if c.Kubernetes && c.PodUID != "" && isHexID(seg) {
			// cgroupfs driver: the engine is not named.
			return done(c, "", seg, p), depth(i)
		}
	}
	if c.Kubernetes {
		c.Path = p
		return c, kdepth
	}
	return c, 0
}

func done(c CgroupContainer, rt, id, p string) CgroupContainer {
	c.Runtime, c.ID, c.Path = rt, id, p
	return c
}
