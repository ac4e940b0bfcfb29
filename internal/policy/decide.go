package policy

import (
	"slices"
	"strings"
)

// Input describes one file operation to decide.
type Input struct {
	// Op is what the event is: one operation, or several when it is each
	// of them (a writing open is OpOpen|OpWrite; a setattr that changes
	// the size and the mode is OpTruncate|OpSetattr). OpWrite alone is
	// decided as OpOpen|OpWrite: every write is an open.
	Op   Operation
	Path string // absolute, clean path of the file
	// ContainerPath is the file's path as the process sees it, when the
	// process runs in a container and policies name container paths.
	ContainerPath string
	FSType        string // filesystem type as in /proc/mounts (ext4, nfs4, fuse.sshfs); "" if unknown
	StorageClass  string // local, network, cloud, shared-folder, removable, pseudo, overlay; "" if unknown
	Subject       Subject
	Env           Env
}

// Subject is the process doing the operation.
type Subject struct {
	PID int32
	Exe string // path of its executable (/proc/PID/exe)
	// Script is the script its exec ran (the file execve named, when the
	// kernel started an interpreter for it); "" for none.
	Script string
	UID    uint32   // real user id
	GID    uint32   // real group id
	Groups []uint32 // supplementary groups

	// ExeSHA256 is the executable's SHA-256 when HasSHA256 is set. If a rule
	// needs it and it is not set, Decide asks Hasher once and stores the
	// answer here.
	ExeSHA256 [32]byte
	HasSHA256 bool
	Hasher    Hasher

	// ExeID is the executable file's device, inode and change time (a
	// stat of /proc/PID/exe, which reaches the file whatever mount
	// namespace or root the process runs in), and ExeDeleted says that
	// file has no name left (it was replaced or removed since the process
	// started).
	ExeID      FileID
	ExeDeleted bool
	// Host, when set, finds the file installed at a path on the host.
	// A rule's executables then select the process only if Exe matches
	// one of them and the file at Exe on the host is the process's
	// executable (ExeID): a program bind-mounted over /usr/bin/head in
	// another mount namespace, or a container image's own /usr/bin/head,
	// prints the same path but is not the host's /usr/bin/head. When nil
	// (policy explain, which asks about a path, not a process),
	// executables match by path alone. The agent always sets it.
	Host HostFiles

	Container Container
	Pod       *Pod // nil when not in a Kubernetes pod (or not known)
}

// Hasher computes an executable's SHA-256 on demand (the agent caches it by
// executable identity).
type Hasher interface {
	SHA256() ([32]byte, error)
}

// FileID identifies a file: its device (st_dev) and inode (st_ino). Ctime
// (st_ctim in nanoseconds) is not part of the identity: it tells that a
// file is unchanged since it was found at a path, since renaming it,
// renaming another file over it, unlinking or linking it all move it.
type FileID struct {
	Dev, Ino uint64
	Ctime    int64
}

// same reports whether a and b are the same file.
func (a FileID) same(b FileID) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// HostFiles finds the files installed on the host (the agent stats them
// below its host root). The Matcher caches its answers by path and trusts
// one only while the process's executable is that very file unchanged
// (same Ctime); otherwise it asks again, so a package upgrade that renames
// a new file over the path is followed, and a process still running the
// old file no longer matches.
type HostFiles interface {
	// Identify returns the identity of the file at path, an absolute
	// path as the host sees it; an error when there is none.
	Identify(path string) (FileID, error)
}

// Container is the container a process runs in; the zero value means the
// host.
type Container struct {
	ID      string // full container id
	Runtime string // docker, podman, containerd, cri-o, lxc, systemd-nspawn, wsl
	Image   string // image reference (docker.io/library/nginx:1.27), if known
	ImageID string // image digest (sha256:...), if known
}

// InContainer reports whether the process runs in a container.
func (c Container) InContainer() bool { return c.ID != "" || c.Runtime != "" }

// Pod is the Kubernetes pod a process runs in.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
}

// Env describes the host the agent runs on.
type Env struct {
	Virtual     bool   // a virtual machine (not physical)
	Hypervisor  string // systemd-detect-virt name, "" on physical machines
	Cloud       string // azure, aws, gcp, ...; "" if none
	InContainer bool   // the agent itself runs in a container
}

// Verdict is what the kernel is told.
type Verdict uint8

const (
	Allow Verdict = iota
	Deny
)

func (v Verdict) String() string {
	if v == Deny {
		return "deny"
	}
	return "allow"
}

// Decision is the outcome of Decide.
type Decision struct {
	Verdict Verdict
	// Covered: some policy covers the file. When false the verdict is allow
	// and holds for every process (the agent may cache it in the kernel).
	Covered bool
	// Audit: the operation should be recorded (an audit or deny rule
	// decided, or an audit-mode policy would have denied).
	Audit bool

	// The rule that decided, from a policy in enforce mode; empty when no
	// enforcing rule matched (the verdict is then allow).
	Effect Effect
	Policy string
	Rule   string

	// WouldDeny: a policy in audit mode would have denied this operation.
	// WouldPolicy and WouldRule name the rule.
	WouldDeny   bool
	WouldPolicy string
	WouldRule   string

	// ExeNotHost: a rule named the process's executable path, but the
	// process's executable is not the file installed at that path on the
	// host (Subject.Host), so the rule did not select it.
	ExeNotHost bool
}

// match is a candidate rule, ranked by precedence.
type match struct {
	p        *cpolicy
	r        *crule
	fileSpec int32
}

// better reports whether a takes precedence over b: higher file
// specificity, then higher subject specificity, then the stronger effect
// (deny over audit over allow), then the policy that sorts first by name,
// then the earlier rule.
func better(a, b *match) bool {
	if b.r == nil {
		return true
	}
	if a.fileSpec != b.fileSpec {
		return a.fileSpec > b.fileSpec
	}
	if a.r.spec != b.r.spec {
		return a.r.spec > b.r.spec
	}
	if sa, sb := severity(a.r.effect), severity(b.r.effect); sa != sb {
		return sa > sb
	}
	if a.p.idx != b.p.idx {
		return a.p.idx < b.p.idx
	}
	return a.r.idx < b.r.idx
}

func severity(e Effect) int {
	switch e {
	case EffectDeny:
		return 3
	case EffectAudit:
		return 2
	case EffectAllow:
		return 1
	}
	return 0
}

// stronger is the one of two deciding rules, each for one operation of
// the same event, that decides the event: the stronger effect (deny over
// audit over allow), then precedence.
func stronger(a, b match) match {
	if a.r == nil {
		return b
	}
	if b.r == nil {
		return a
	}
	if sa, sb := severity(a.r.effect), severity(b.r.effect); sa != sb {
		if sb > sa {
			return b
		}
		return a
	}
	if better(&b, &a) {
		return b
	}
	return a
}

// decider carries one decision's state. It lives on Decide's stack.
type decider struct {
	m       *Matcher
	in      *Input
	op      Operation // the one operation being decided (in.Op when it is one)
	covered bool
	enforce match
	audit   match
	hashErr bool
	exeHost exeHost
}

// exeHost is whether the subject's executable is the host's file at its
// path, found out once per decision.
type exeHost uint8

const (
	exeHostUnknown exeHost = iota
	exeHostYes
	exeHostNo
)

// Decide decides one operation. Deciding a file that no policy covers does
// not allocate. in.Subject may be updated with the executable's hash.
//
// An event of several operations (in.Op has several bits; OpWrite always
// brings OpOpen) is decided for each operation on its own, by the usual
// precedence among the rules that name that operation, and is allowed
// only if it is allowed as each: a writing open is denied when the rule
// that decides it as an open denies, or the rule that decides it as a
// write does. The Decision names the deciding rule with the strongest
// effect (deny over audit over allow; between equals, the one that takes
// precedence); audit-mode policies likewise.
func (m *Matcher) Decide(in *Input) Decision {
	ops := in.Op.decided()
	d := decider{m: m, in: in, op: ops}
	if ops&(ops-1) == 0 {
		d.walk()
		return d.result()
	}
	var enforce, audit match
	for rest := ops; rest != 0; rest &= rest - 1 {
		d.op = rest & -rest
		d.enforce, d.audit = match{}, match{}
		d.walk()
		if !d.covered {
			break // no policy covers the file, whatever the operation
		}
		enforce, audit = stronger(enforce, d.enforce), stronger(audit, d.audit)
	}
	d.enforce, d.audit = enforce, audit
	return d.result()
}

// walk considers every policy whose index matches the file, for d.op.
func (d *decider) walk() {
	m, in := d.m, d.in
	if !m.paths.Empty() {
		var buf [16]int32
		for _, id := range m.paths.Match(buf[:0], in.Path) {
			t := m.pathTargets[id]
			d.consider(m.policies[t.policy], t.spec)
		}
	}
	if in.ContainerPath != "" && !m.cpaths.Empty() {
		var buf [16]int32
		for _, id := range m.cpaths.Match(buf[:0], in.ContainerPath) {
			t := m.pathTargets[id]
			d.consider(m.policies[t.policy], t.spec)
		}
	}
	if len(m.byExt) > 0 {
		base := baseName(in.Path)
		var lower [maxExtLen]byte
		for i := 0; i < len(base); i++ {
			if base[i] != '.' || i == 0 {
				continue
			}
			if ext, ok := lowerInto(&lower, base[i+1:]); ok {
				for _, pi := range m.byExt[string(ext)] {
					d.consider(m.policies[pi], 0)
				}
			}
		}
	}
	for _, pi := range m.unanchored {
		d.consider(m.policies[pi], 0)
	}
}

func (d *decider) result() Decision {
	dec := Decision{Covered: d.covered, ExeNotHost: d.exeHost == exeHostNo}
	if e := d.enforce; e.r != nil {
		dec.Effect, dec.Policy, dec.Rule = e.r.effect, e.p.src.Name, e.p.ruleName(e.r)
		switch e.r.effect {
		case EffectDeny:
			dec.Verdict, dec.Audit = Deny, true
		case EffectAudit:
			dec.Audit = true
		}
	}
	if a := d.audit; a.r != nil && dec.Verdict == Allow {
		switch a.r.effect {
		case EffectDeny:
			dec.WouldDeny, dec.WouldPolicy, dec.WouldRule, dec.Audit = true, a.p.src.Name, a.p.ruleName(a.r), true
		case EffectAudit:
			dec.Audit = true
		}
	}
	return dec
}

// consider evaluates one policy whose path, extension or catch-all index
// matched the file.
func (d *decider) consider(p *cpolicy, fileSpec int32) {
	if !p.fileMatches(d.in) {
		return
	}
	d.covered = true
	best := &d.enforce
	if p.audit {
		best = &d.audit
	}
	for i := range p.rules {
		r := &p.rules[i]
		if r.ops&d.op == 0 {
			continue
		}
		cand := match{p: p, r: r, fileSpec: fileSpec}
		if !better(&cand, best) {
			// It could not win even if it matched: skip its subject test.
			continue
		}
		if r.subj.src != nil && !r.subj.matches(d) {
			continue
		}
		*best = cand
	}
}

// ruleName is the name of r, one of p's rules.
func (p *cpolicy) ruleName(r *crule) string { return p.src.Spec.Rules[r.idx].Name }

// fileMatches checks the parts of the file selector that the index did not.
// Extensions and exclusions are checked against the container path too,
// since a file bind-mounted into a container may have another name there.
func (p *cpolicy) fileMatches(in *Input) bool {
	return (p.extOK(in.Path) || (in.ContainerPath != "" && p.extOK(in.ContainerPath))) &&
		p.fsOK(in.FSType) && p.classOK(in.StorageClass) &&
		!p.excluded(in.Path) && (in.ContainerPath == "" || !p.excluded(in.ContainerPath))
}

func (p *cpolicy) extOK(path string) bool {
	if p.exts.empty() {
		return true
	}
	base := baseName(path)
	var lower [maxExtLen]byte
	for i := 1; i < len(base); i++ {
		if base[i] != '.' {
			continue
		}
		if ext, ok := lowerInto(&lower, base[i+1:]); ok {
			if p.exts.hasBytes(ext) {
				return true
			}
		}
	}
	return false
}

func (p *cpolicy) fsOK(fsType string) bool {
	return len(p.fsTypes) == 0 || slices.Contains(p.fsTypes, fsType)
}

func (p *cpolicy) classOK(class string) bool {
	return len(p.classes) == 0 || slices.Contains(p.classes, class)
}

func (p *cpolicy) excluded(path string) bool {
	for _, pat := range p.excludePats {
		if pat.Match(path) {
			return true
		}
	}
	if p.exclude == nil {
		return false
	}
	var buf [4]int32
	return len(p.exclude.Match(buf[:0], path)) > 0
}

func (s *csubject) matches(d *decider) bool {
	in := &d.in.Subject
	return s.exeOK(in.Exe) && s.exeIsHosts(d) && s.hashOK(d) && s.scriptOK(in) && s.userOK(in) && s.groupOK(in) &&
		s.containerOK(in) && s.kubeOK(in) && s.envOK(&d.in.Env)
}

// exeIsHosts reports, for a rule naming executables whose path (exact or
// glob) matched, whether the process's executable is the file installed
// at that path on the host. Every such rule matched the same path, the
// subject's, so this is found out once per decision.
func (s *csubject) exeIsHosts(d *decider) bool {
	if s.exe == nil || d.in.Subject.Host == nil {
		return true
	}
	if d.exeHost == exeHostUnknown {
		d.exeHost = exeHostNo
		if d.m.hostExes.isHosts(&d.in.Subject) {
			d.exeHost = exeHostYes
		}
	}
	return d.exeHost == exeHostYes
}

func (s *csubject) exeOK(exe string) bool {
	e := s.exe
	if e == nil {
		return true
	}
	if e.exact.has(exe) {
		return true
	}
	for _, g := range e.globs {
		if g.Match(exe) {
			return true
		}
	}
	return false
}

func (s *csubject) hashOK(d *decider) bool {
	hashes := s.src.ExecutableHashes
	if len(hashes) == 0 {
		return true
	}
	in := &d.in.Subject
	if !in.HasSHA256 {
		if in.Hasher == nil || d.hashErr {
			return false
		}
		sum, err := in.Hasher.SHA256()
		if err != nil {
			d.hashErr = true
			return false
		}
		in.ExeSHA256, in.HasSHA256 = sum, true
	}
	return slices.Contains(hashes, in.ExeSHA256)
}

func (s *csubject) scriptOK(in *Subject) bool {
	return len(s.src.Scripts) == 0 || (in.Script != "" && slices.Contains(s.src.Scripts, in.Script))
}

func (s *csubject) userOK(in *Subject) bool {
	return len(s.src.Users) == 0 || hasID(s.src.Users, in.UID)
}

func (s *csubject) groupOK(in *Subject) bool {
	gids := s.src.Groups
	if len(gids) == 0 || hasID(gids, in.GID) {
		return true
	}
	for _, g := range in.Groups {
		if hasID(gids, g) {
			return true
		}
	}
	return false
}

func hasID(refs []IDRef, id uint32) bool {
	for i := range refs {
		if refs[i].ID == id {
			return true
		}
	}
	return false
}

func (s *csubject) containerOK(in *Subject) bool {
	c := s.src.Container
	if c == nil {
		return true
	}
	inside := in.Container.InContainer()
	if c.Scope == ContainerNoneScope {
		return !inside
	}
	if !inside {
		return false
	}
	if len(c.Runtimes) > 0 && !slices.Contains(c.Runtimes, in.Container.Runtime) {
		return false
	}
	if len(c.Images) > 0 && !imageMatches(c.Images, &in.Container) {
		return false
	}
	if len(c.IDs) > 0 {
		for _, id := range c.IDs {
			if len(in.Container.ID) >= len(id) && in.Container.ID[:len(id)] == id {
				return true
			}
		}
		return false
	}
	return true
}

// imageMatches reports whether the container's image is one of images: a
// selector equals the image reference, or the reference without its tag
// (nginx matches nginx:1.27, docker.io/library/nginx matches
// docker.io/library/nginx:1.27), or the image digest (sha256:...), alone or
// after a repository and @.
func imageMatches(images []string, c *Container) bool {
	ref, repo := c.Image, c.Image
	if i := strings.LastIndexByte(repo, '@'); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndexByte(repo, ':'); i >= 0 && strings.LastIndexByte(repo, '/') < i {
		repo = repo[:i]
	}
	digest := c.ImageID
	if i := strings.LastIndexByte(digest, '@'); i >= 0 {
		digest = digest[i+1:]
	}
	for _, s := range images {
		if s == ref || s == repo {
			return ref != ""
		}
		if digest == "" {
			continue
		}
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
		if s == digest {
			return true
		}
	}
	return false
}

func (s *csubject) kubeOK(in *Subject) bool {
	k := s.src.Kubernetes
	if k == nil {
		return true
	}
	if in.Pod == nil {
		return false
	}
	if len(k.Namespaces) > 0 && !slices.Contains(k.Namespaces, in.Pod.Namespace) {
		return false
	}
	return k.PodLabels == nil || k.PodLabels.Matches(in.Pod.Labels)
}

func (s *csubject) envOK(env *Env) bool {
	e := s.src.Environment
	if e == nil {
		return true
	}
	if len(e.Machines) > 0 {
		kind := "physical"
		if env.Virtual {
			kind = "virtual"
		}
		if !slices.Contains(e.Machines, kind) {
			return false
		}
	}
	if len(e.Hypervisors) > 0 && !slices.Contains(e.Hypervisors, env.Hypervisor) {
		return false
	}
	if len(e.Clouds) > 0 && !slices.Contains(e.Clouds, env.Cloud) {
		return false
	}
	if e.InContainer != nil && *e.InContainer != env.InContainer {
		return false
	}
	return true
}

func baseName(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[i+1:]
		}
	}
	return path
}

// lowerInto lower-cases an ASCII extension into buf; false if it is too long.
func lowerInto(buf *[maxExtLen]byte, s string) ([]byte, bool) {
	if len(s) == 0 || len(s) > maxExtLen {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}
