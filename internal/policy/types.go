package policy

import (
	"errors"
	"fmt"
	"strings"
)

// APIVersion and Kind are the only ones this version of drmfilter reads.
const (
	APIVersion = "drmfilter.dev/v1"
	Kind       = "ProtectionPolicy"
)

// Pos is where a value stands in its policy file.
type Pos struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column) }

// Policy is one ProtectionPolicy document.
type Policy struct {
	Name        string            // metadata.name: unique in a set; a DNS-label-like name
	Labels      map[string]string // metadata.labels: free-form, not used for decisions
	Annotations map[string]string // metadata.annotations: free-form, not used for decisions
	Spec        Spec
	Pos         Pos // where the document starts
	NamePos     Pos // where metadata.name stands
}

// Spec says what a policy protects and who may do what with it.
type Spec struct {
	Mode  Mode         // enforce (default) or audit
	Files FileSelector // which files the policy covers
	Rules []Rule       // who may do what; at least one
}

// Mode is enforce or audit. In audit mode every deny becomes "would deny":
// the operation is allowed and recorded.
type Mode uint8

const (
	ModeEnforce Mode = iota
	ModeAudit
)

func (m Mode) String() string {
	if m == ModeAudit {
		return "audit"
	}
	return "enforce"
}

// ParseMode parses "enforce" or "audit".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "enforce":
		return ModeEnforce, nil
	case "audit":
		return ModeAudit, nil
	}
	return 0, fmt.Errorf("unknown mode %q; expected enforce or audit", s)
}

// FileSelector says which files a policy covers. A file is covered when it
// matches every part that is given: one of Paths or ContainerPaths (if any
// of them; a container path matches only for processes in containers), one of
// Extensions (if any), one of Filesystems (if any) and one of StorageClasses
// (if any), and none of ExcludePaths. At least one of the first four must be
// given.
type FileSelector struct {
	Paths          []string // absolute globs: *, ?, [a-z] within a segment, ** across segments
	ContainerPaths []string // globs of paths as a containerised process sees them
	Extensions     []string // file name extensions, case-insensitive, stored lower case without the dot
	Filesystems    []string // filesystem types as in /proc/mounts: ext4, xfs, nfs4, fuse.sshfs, ...
	StorageClasses []string // local, network, cloud, shared-folder, removable
	ExcludePaths   []string // absolute globs of files never covered
	Pos            Pos
}

// StorageClasses a file selector may name. They are the classes the
// environment detector gives every mount.
var storageClasses = []string{"local", "network", "cloud", "shared-folder", "removable", "pseudo", "overlay"}

// Operation is a set of file operations, as a bit mask.
//
// open, exec and read are what fanotify mediates; the others need the
// BPF-LSM backend (see Backend). open keeps its meaning on every backend:
// any open, for reading or for writing. write is the narrower "open for
// writing": every writing open is also an open, so a backend that can tell
// reads from writes decides a writing open as OpOpen|OpWrite, and Decide
// requires it to be allowed as both (see Decide).
type Operation uint16

const (
	OpOpen     Operation = 1 << iota // any open, for reading or writing (fanotify FAN_OPEN_PERM; LSM file_open)
	OpExec                           // open for execution (FAN_OPEN_EXEC_PERM; LSM bprm_check_security)
	OpRead                           // read access to the content (FAN_ACCESS_PERM)
	OpWrite                          // open for writing: O_WRONLY or O_RDWR, with or without O_APPEND or O_TRUNC (LSM file_open with FMODE_WRITE)
	OpDelete                         // unlink(2) or rmdir(2) of the file or directory (LSM inode_unlink, inode_rmdir)
	OpRename                         // the file renamed away, or another file renamed over it (LSM inode_rename)
	OpLink                           // a new hard link to the file (LSM inode_link)
	OpTruncate                       // truncate(2), ftruncate(2), and the truncation an open with O_TRUNC makes, even O_RDONLY|O_TRUNC (LSM inode_setattr with ATTR_SIZE)
	OpSetattr                        // chmod, chown, utimes, setxattr, removexattr, ACL changes (LSM inode_setattr, inode_setxattr, inode_removexattr, inode_set_acl, inode_remove_acl)

	opAll = OpOpen | OpExec | OpRead | OpWrite | OpDelete | OpRename | OpLink | OpTruncate | OpSetattr

	// portableOps are the operations every backend mediates. The decoder
	// keeps where each other operation is written (Set.opPos), so that an
	// error for a backend that cannot enforce one points at it.
	portableOps = OpOpen | OpExec | OpRead
)

// opNames lists every operation, in the order String writes them.
var opNames = []struct {
	op   Operation
	name string
}{{OpOpen, "open"}, {OpExec, "exec"}, {OpRead, "read"}, {OpWrite, "write"}, {OpDelete, "delete"},
	{OpRename, "rename"}, {OpLink, "link"}, {OpTruncate, "truncate"}, {OpSetattr, "setattr"}}

// OperationNames returns the name of every operation, in order: open, exec,
// read, write, delete, rename, link, truncate, setattr.
func OperationNames() []string {
	out := make([]string, len(opNames))
	for i, o := range opNames {
		out[i] = o.name
	}
	return out
}

// ParseOperation parses one operation name.
func ParseOperation(s string) (Operation, error) {
	for _, o := range opNames {
		if o.name == s {
			return o.op, nil
		}
	}
	names := OperationNames()
	msg := fmt.Sprintf("unknown operation %q; expected one of %s", s, strings.Join(names, ", "))
	if sg := suggest(s, names); sg != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sg)
	}
	return 0, errors.New(msg)
}

// ParseOperations parses operation names separated by commas ("open,write"),
// as String writes a set of several.
func ParseOperations(s string) (Operation, error) {
	var ops Operation
	for _, name := range strings.Split(s, ",") {
		op, err := ParseOperation(strings.TrimSpace(name))
		if err != nil {
			return 0, err
		}
		ops |= op
	}
	return ops, nil
}

// String names the operations in o, separated by commas ("open,write"),
// or "none".
func (o Operation) String() string {
	var parts []string
	for _, n := range opNames {
		if o&n.op != 0 {
			parts = append(parts, n.name)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// each calls f for every single operation in o, in bit order.
func (o Operation) each(f func(Operation)) {
	for rest := o & opAll; rest != 0; rest &= rest - 1 {
		f(rest & -rest)
	}
}

// decided is the set of operations an event of operations o is decided
// as: a write is an open for writing, so OpWrite brings OpOpen with it.
func (o Operation) decided() Operation {
	if o&OpWrite != 0 {
		o |= OpOpen
	}
	return o
}

// Effect is what a rule does when it decides.
type Effect uint8

const (
	EffectNone  Effect = iota // no rule decided
	EffectAllow               // allow
	EffectAudit               // allow and record
	EffectDeny                // deny (or, in audit mode, allow and record "would deny")
)

var effectNames = [...]string{EffectNone: "none", EffectAllow: "allow", EffectAudit: "audit", EffectDeny: "deny"}

func (e Effect) String() string {
	if int(e) < len(effectNames) {
		return effectNames[e]
	}
	return fmt.Sprintf("effect(%d)", e)
}

// ParseEffect parses allow, deny or audit.
func ParseEffect(s string) (Effect, error) {
	switch s {
	case "allow":
		return EffectAllow, nil
	case "deny":
		return EffectDeny, nil
	case "audit":
		return EffectAudit, nil
	}
	return 0, fmt.Errorf("unknown effect %q; expected one of allow, deny, audit", s)
}

// Rule says that the subjects it selects may (allow), may not (deny), or may
// and are recorded (audit) perform its operations on the policy's files.
type Rule struct {
	Name     string
	Subjects *Subjects // nil: every process
	Pos      Pos
	// The small fields last, so that a Rule takes 64 bytes, not 72: the
	// 16-bit Operations and the 8-bit Effect share the last word.
	Operations Operation
	Effect     Effect
}

// Subjects select processes. Every field that is given must match (AND);
// within a list, any entry may match (OR).
type Subjects struct {
	Executables      []string   // absolute paths or globs of the program's executable (/proc/PID/exe)
	ExecutableHashes [][32]byte // SHA-256 of the executable's content
	// Scripts are absolute paths of scripts: the process must be an
	// interpreter that its exec started to run one of them (execve of
	// the script, through its "#!" line). bpf backend only: the kernel
	// knows which file the exec named; /proc shows only a command line
	// the process can rewrite.
	Scripts     []string
	Users       []IDRef // user names or numeric ids (the process's real uid)
	Groups      []IDRef // group names or numeric ids (real gid or any supplementary group)
	Container   *ContainerSelector
	Kubernetes  *KubernetesSelector
	Environment *EnvironmentSelector
	Pos         Pos
}

// IDRef is a user or group as written, and the id it resolved to at load.
type IDRef struct {
	Name string // as written: a name or a decimal id
	ID   uint32 // resolved id
	Pos  Pos
}

// ContainerScope says whether a rule is about processes in containers.
type ContainerScope uint8

const (
	ContainerAnyScope  ContainerScope = iota // any container (with Runtimes/IDs: only those)
	ContainerNoneScope                       // host processes only
)

// ContainerSelector selects processes by the container they run in.
// `container: any` selects every containerised process, `container: none`
// host processes only; the mapping form selects containers by runtime
// and/or ID (a full ID or a prefix of at least 12 hex digits).
type ContainerSelector struct {
	Scope    ContainerScope
	Runtimes []string
	IDs      []string
	Images   []string // image references or digests (see imageMatches)
	Pos      Pos
}

// KubernetesSelector selects processes by the pod they run in.
type KubernetesSelector struct {
	Namespaces []string
	PodLabels  *LabelSelector
	Pos        Pos
}

// EnvironmentSelector makes a rule apply only on some hosts.
type EnvironmentSelector struct {
	Machines    []string // physical, virtual
	Hypervisors []string // as systemd-detect-virt names them: kvm, microsoft, vmware, xen, ...
	Clouds      []string // azure, aws, gcp, ...
	InContainer *bool    // the agent itself runs in a container
	Pos         Pos
}
