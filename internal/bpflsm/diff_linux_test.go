package bpflsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/storage"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// The differential test: random policy sets over a small tree, every
// operation's outcome in the kernel compared with policy.Matcher.Decide.
//
// guest.Run does not pass the host's environment into the guest; these
// variables take effect where the guest's test binary sees them.
const (
	diffSeedEnv  = "DRMFILTER_BPF_DIFF_SEED"  // the generator's seed
	diffLoadsEnv = "DRMFILTER_BPF_DIFF_LOADS" // how many loads (policy generations)
)

const (
	diffDefaultSeed  = 20250601
	diffDefaultLoads = 10
	diffUniverses    = 3 // independent policy sets per load, each over its own tree
)

// diffFile is one file of the tree. The test keeps each file's inode for
// the whole test (it renames back, relinks from a backup and rewrites in
// place), so that the plan built from the tree stays true of it.
type diffFile struct {
	rel      string // below the tree
	path     string
	exec     bool // a copy of busybox, run as "true"
	mode     os.FileMode
	content  []byte
	dev      uint32 // the kernel's encoding
	ino      uint64
	universe int
}

// diffSubject is a subject and what Decide is told about it.
type diffSubject struct {
	subject
	name   string
	gid    uint32
	groups []uint32
	// For a script run through its "#!" line (subject.exe is the
	// script): the interpreter, and the script.
	interp, script string
}

// diffOp is one operation a child performs and the inputs the kernel
// decides for it, in the order its hooks run: the first denied one ends
// the operation with EPERM.
type diffOp struct {
	kind   string
	f      *diffFile
	target string // rename or link destination, or the unlink backup
	ins    []policy.Operation
}

// short names the operation by the file's path in its tree.
func (o *diffOp) short() string {
	return o.kind + " " + o.f.rel
}

func (o *diffOp) line() string {
	if o.kind == "rename" || o.kind == "link" {
		return o.kind + " " + o.f.path + " " + o.target
	}
	return o.kind + " " + o.f.path
}

// diffKinds are the operations, by phase: a child performs them in phase
// order, so that no operation meets a file an earlier one of the same
// child destroyed (renamed or unlinked: phase 3, at most one per file) or
// made unusable (an exec target truncated or made 0600).
var diffKinds = []struct {
	kind     string
	phase    int
	weight   int
	rootOnly bool // uid 1000 is refused by permissions, before the LSM
	execOnly bool
	ins      []policy.Operation
}{
	{"read", 0, 4, false, false, []policy.Operation{policy.OpOpen, policy.OpRead}},
	{"write", 0, 3, false, false, []policy.Operation{policy.OpOpen | policy.OpWrite}},
	// An exec opens the file (file_open with FMODE_EXEC, decided as an
	// exec), reads its header with kernel_read (file_permission on a
	// file opened for exec: not decided again) and checks it
	// (bprm_check_security).
	{"exec", 0, 3, false, true, []policy.Operation{policy.OpExec, policy.OpExec}},
	{"link", 0, 2, false, false, []policy.Operation{policy.OpLink}},
	{"utimes", 0, 1, false, false, []policy.Operation{policy.OpSetattr}},
	{"setxattr", 0, 1, true, false, []policy.Operation{policy.OpSetattr}},
	{"chmod", 1, 2, false, false, []policy.Operation{policy.OpSetattr}},
	{"chown", 1, 1, true, false, []policy.Operation{policy.OpSetattr}},
	{"truncate", 2, 2, false, false, []policy.Operation{policy.OpTruncate}},
	// O_WRONLY|O_TRUNC: the open (file_open with FMODE_WRITE), then the
	// truncation (inode_setattr with ATTR_SIZE).
	{"otrunc", 2, 2, false, false, []policy.Operation{policy.OpOpen | policy.OpWrite, policy.OpTruncate}},
	{"unlink", 3, 2, false, false, []policy.Operation{policy.OpDelete}},
	{"rename", 3, 2, false, false, []policy.Operation{policy.OpRename}},
}

// diffEvent is an event reduced to what the comparison checks.
type diffEvent struct {
	ino       uint64
	op        uint32
	denied    bool
	wouldDeny bool
	rule      string // policy/rule of the enforcing rule that decided; "" none
	wouldRule string // of the audit-mode rule that would deny
}

func TestKernelMatchesUserSpace(t *testing.T) {
	guest.RequireGuest(t)
	seed := uint64(diffDefaultSeed)
	if v := os.Getenv(diffSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		must(t, err)
		seed = s
	}
	nLoads := diffDefaultLoads
	if v := os.Getenv(diffLoadsEnv); v != "" {
		n, err := strconv.Atoi(v)
		must(t, err)
		nLoads = n
	}
	t.Logf("seed %d, %d loads of %d policy sets each (%s, %s override them)", seed, nLoads, diffUniverses, diffSeedEnv, diffLoadsEnv)
	rng := rand.New(rand.NewPCG(seed, 0xd1ff))
	start := time.Now()

	plain, keeper := subjects(t)
	root := filepath.Join(t.TempDir(), "tmpfs")
	must(t, os.Mkdir(root, 0o755))
	must(t, unix.Mount("tmpfs", root, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	testutil.OpenToAll(t, root)
	out, keep := filepath.Join(root, "out"), filepath.Join(root, "keep")
	must(t, os.Mkdir(out, 0o777))
	must(t, os.Chmod(out, 0o777))
	must(t, os.Mkdir(keep, 0o700))
	// One tree per universe: a load holds one random policy set per tree,
	// each naming only its own tree's files, so that one load of the
	// programs (seconds under emulation) tests several sets.
	trees := make([]string, diffUniverses)
	files := make([][]*diffFile, diffUniverses)
	var all []*diffFile
	byIno := map[uint64]*diffFile{}
	for u := range trees {
		trees[u] = filepath.Join(root, fmt.Sprintf("t%d", u))
		files[u] = diffTree(t, trees[u])
		for _, f := range files[u] {
			f.universe = u
			byIno[f.ino] = f
		}
		all = append(all, files[u]...)
	}
	mounts, err := storage.LoadMounts("/", 0)
	must(t, err)
	_, info := mounts.Lookup(all[0].path)
	if info.FSType != "tmpfs" {
		t.Fatalf("%s: filesystem %q, want tmpfs", all[0].path, info.FSType)
	}
	class := string(info.Class)

	groups, err := unix.Getgroups()
	must(t, err)
	var rootGroups []uint32
	for _, g := range groups {
		rootGroups = append(rootGroups, uint32(g))
	}
	// A script whose "#!" line names the keeper: the kernel runs the
	// keeper for it, an interpreter that a rule may select by the script.
	script := filepath.Join(filepath.Dir(keeper.exe), "script")
	must(t, os.WriteFile(script, []byte("#!"+keeper.exe+"\n"), 0o755))
	subs := []diffSubject{
		{subject: plain, name: "plain/uid0", gid: uint32(os.Getgid()), groups: rootGroups},
		{subject: subject{exe: script}, name: "script/uid0", gid: uint32(os.Getgid()), groups: rootGroups, interp: keeper.exe, script: script},
		{subject: keeper, name: "keeper/uid0", gid: uint32(os.Getgid()), groups: rootGroups},
		{subject: subject{plain.exe, 1000}, name: "plain/uid1000", gid: 1000},
		{subject: subject{keeper.exe, 1000}, name: "keeper/uid1000", gid: 1000},
	}

	var b *Backend
	t.Cleanup(func() {
		if b != nil {
			_ = b.Close()
		}
	})
	var st struct {
		decisions, mismatches, ops, events, evMismatches, naming int
		build, load                                              time.Duration
	}
	for load := 0; load < nLoads; load++ {
		texts := make([]string, diffUniverses)
		for u := range texts {
			texts[u] = diffGenSet(t, rng, u, trees[u], plain.exe, keeper.exe, script, class)
		}
		m := diffCompile(t, strings.Join(texts, ""))
		t0 := time.Now()
		plan, err := Build(m, BuildOptions{Mounts: mounts})
		if err != nil {
			t.Fatalf("load %d: build: %v\n%s", load, err, strings.Join(texts, ""))
		}
		t1 := time.Now()
		if b == nil {
			b, err = Load(plan, Options{})
		} else {
			err = b.Replace(plan) // which also carries the files the kernel kept
		}
		if err != nil {
			t.Fatalf("load %d: %v\n%s", load, err, strings.Join(texts, ""))
		}
		st.build += t1.Sub(t0)
		st.load += time.Since(t1)
		if evs := diffDrain(t, b); len(evs) > 0 {
			t.Fatalf("load %d: %d events before any subject ran: %+v", load, len(evs), evs)
		}
		report := make([][]string, diffUniverses)
		outcomes := map[string]int{}
		nEvents := 0
		for _, s := range subs {
			var ops []diffOp
			for u := range files {
				ops = append(ops, diffGenOps(rng, files[u], s.uid == 0, out, keep)...)
			}
			diffSortOps(ops)
			lines := make([]string, len(ops))
			for i := range ops {
				lines[i] = ops[i].line()
				if ops[i].kind == "unlink" {
					must(t, os.Link(ops[i].f.path, ops[i].target)) // the backup it is restored from
				}
			}
			got := s.as(t, lines...)
			evs := diffDrain(t, b)
			for _, g := range got {
				outcomes[g]++
			}
			nEvents += len(evs)
			st.ops += len(ops)

			// What Decide says: each operation's outcome, and the events
			// of the inputs the kernel decides before the first denial.
			want := map[diffEvent]bool{}
			for i := range ops {
				o := &ops[i]
				exp := "ok"
				var why []string
				for _, op := range o.ins {
					in := policy.Input{Op: op, Path: o.f.path, FSType: info.FSType, StorageClass: class,
						Subject: policy.Subject{Exe: s.exe, UID: s.uid, GID: s.gid, Groups: s.groups}}
					if s.script != "" {
						in.Subject.Exe, in.Subject.Script = s.interp, s.script
					}
					d := m.Decide(&in)
					st.decisions++
					why = append(why, fmt.Sprintf("%s: %s", op, diffDescribe(&d)))
					if d.Audit {
						ev := diffEvent{ino: o.f.ino, op: kernelOps(op), denied: d.Verdict == policy.Deny, wouldDeny: d.WouldDeny}
						if d.Rule != "" {
							ev.rule = d.Policy + "/" + d.Rule
						}
						if d.WouldDeny {
							ev.wouldRule = d.WouldPolicy + "/" + d.WouldRule
						}
						want[ev] = true
					}
					if d.Verdict == policy.Deny {
						exp = "EPERM"
						break
					}
				}
				u := o.f.universe
				switch {
				case got[i] != "ok" && got[i] != "EPERM":
					st.mismatches++
					report[u] = append(report[u], fmt.Sprintf("  %s by %s: unexpected outcome %s (Decide: %s)", o.short(), s.name, got[i], strings.Join(why, "; ")))
				case got[i] != exp:
					st.mismatches++
					report[u] = append(report[u], fmt.Sprintf("  %s by %s: kernel %s, Decide %s (%s); %s", o.short(), s.name, got[i], exp, strings.Join(why, "; "), diffEntry(b, o.f)))
				}
			}
			// What the kernel reported. Events are compared as sets: a
			// read reads more than once, an exec reads its header and
			// its program headers.
			seen := map[diffEvent]bool{}
			for _, e := range evs {
				de := diffEvent{ino: e.Ino, op: e.Op, denied: e.Denied, wouldDeny: e.WouldDeny}
				if e.Unplaced || e.NoClass || e.IndexFull || byIno[e.Ino] == nil {
					st.evMismatches++
					report[0] = append(report[0], fmt.Sprintf("  by %s: event %+v: unplaced, no class, index full or not a file of the trees", s.name, e))
					continue
				}
				if e.Rule != nil {
					de.rule = e.Rule.Policy + "/" + e.Rule.Name
				}
				if e.WouldDeny && e.WouldRule != nil {
					de.wouldRule = e.WouldRule.Policy + "/" + e.WouldRule.Name
				}
				seen[de] = true
			}
			st.events += len(want)
			// Outcomes first (file, operation, denied, would-deny), then
			// which rule the event names.
			flags := func(set map[diffEvent]bool) map[diffEvent]bool {
				out := map[diffEvent]bool{}
				for e := range set {
					e.rule, e.wouldRule = "", ""
					out[e] = true
				}
				return out
			}
			wantF, seenF := flags(want), flags(seen)
			for e := range want {
				f := e
				f.rule, f.wouldRule = "", ""
				u := byIno[e.ino].universe
				switch {
				case !seenF[f]:
					st.evMismatches++
					report[u] = append(report[u], fmt.Sprintf("  by %s: no event %s, which Decide expects", s.name, diffEventString(e, byIno)))
				case !seen[e]:
					st.naming++
					report[u] = append(report[u], fmt.Sprintf("  by %s: the event names another rule than Decide's %s", s.name, diffEventString(e, byIno)))
				}
			}
			for e := range seen {
				f := e
				f.rule, f.wouldRule = "", ""
				u := byIno[e.ino].universe
				switch {
				case !wantF[f]:
					st.evMismatches++
					report[u] = append(report[u], fmt.Sprintf("  by %s: event %s, which Decide does not expect", s.name, diffEventString(e, byIno)))
				case !want[e]:
					report[u] = append(report[u], fmt.Sprintf("  by %s: ... the kernel's event: %s", s.name, diffEventString(e, byIno)))
				}
			}
			diffRestore(t, ops, got, all)
		}
		t.Logf("load %d: %d rules in %d policies; plan: %d rules, %d classes, %d files, %d trees; outcomes %v, %d events",
			load, m.Set().Rules(), len(m.Set().Policies), len(plan.Rules), len(plan.Classes), len(plan.Files), len(plan.Dirs), outcomes, nEvents)
		for u, r := range report {
			if len(r) > 0 {
				slices.Sort(r)
				t.Errorf("load %d, set %d (tree %s): the kernel and Decide differ:\n%s\npolicies:\n%s", load, u, trees[u], strings.Join(r, "\n"), texts[u])
			}
		}
	}
	c, err := b.Counters()
	must(t, err)
	t.Logf("%d policy sets in %d loads, %d operations, %d decisions compared (%d mismatches), %d expected events compared (%d mismatches, %d naming another rule); build %v, load/replace %v in all; counters %+v; %v",
		nLoads*diffUniverses, nLoads, st.ops, st.decisions, st.mismatches, st.events, st.evMismatches, st.naming,
		st.build.Round(time.Millisecond), st.load.Round(time.Millisecond), c, time.Since(start).Round(time.Millisecond))
}

// diffCompile compiles a policy set the generator checked.
func diffCompile(t *testing.T, text string) *policy.Matcher {
	t.Helper()
	set, err := policy.Load([]policy.Source{{Name: "diff.yaml", Data: []byte(text)}}, policy.LoadOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if errs := Unsupported(set); len(errs) > 0 {
		t.Fatalf("the generator wrote what the bpf backend does not support: %v\n%s", errors.Join(errs...), text)
	}
	return policy.Compile(set, policy.CompileOptions{})
}

// diffTree makes the tree and returns its files, each with its inode.
// Files are owned by uid 1000 and open to all, so that uid 1000 is
// refused only by the programs.
func diffTree(t *testing.T, tree string) []*diffFile {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	must(t, err)
	bbData, err := os.ReadFile(bb)
	must(t, err)
	var files []*diffFile
	for _, rel := range []string{"a/f.txt", "a/g", "a/true", "a/x/h.txt", "a/x/k", "a/x/true", "a/x/y/z.txt",
		"b/m.txt", "b/n", "b/true", "c/p.txt", "c/q"} {
		f := &diffFile{rel: rel, path: filepath.Join(tree, rel), mode: 0o666, content: []byte("content of " + rel + "\n")}
		if filepath.Base(rel) == "true" {
			f.exec, f.mode, f.content = true, 0o777, bbData
		}
		must(t, os.MkdirAll(filepath.Dir(f.path), 0o777))
		must(t, os.WriteFile(f.path, f.content, f.mode))
		files = append(files, f)
	}
	must(t, filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(p, 0o777); err != nil {
				return err
			}
		}
		return os.Lchown(p, 1000, 1000)
	}))
	for _, f := range files {
		must(t, os.Chmod(f.path, f.mode))
		var st unix.Stat_t
		must(t, unix.Stat(f.path, &st))
		f.dev, f.ino = KernelDev(st.Dev), st.Ino
	}
	return files
}

// diffRestore undoes what the allowed operations did, keeping every
// file's inode: the test process is the agent, whose operations the
// programs do not decide.
func diffRestore(t *testing.T, ops []diffOp, got []string, files []*diffFile) {
	t.Helper()
	for i := range ops {
		o := &ops[i]
		ok := got[i] == "ok"
		switch o.kind {
		case "rename":
			if ok {
				must(t, os.Rename(o.target, o.f.path))
			}
		case "link":
			if ok {
				must(t, os.Remove(o.target))
			}
		case "unlink":
			if ok {
				must(t, os.Link(o.target, o.f.path))
			}
			must(t, os.Remove(o.target))
		}
	}
	for _, f := range files {
		var st unix.Stat_t
		must(t, unix.Stat(f.path, &st))
		if st.Ino != f.ino {
			t.Fatalf("%s: inode %d, want %d", f.path, st.Ino, f.ino)
		}
		if st.Size != int64(len(f.content)) {
			fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_TRUNC, 0)
			must(t, err)
			_, err = fd.Write(f.content)
			must(t, errors.Join(err, fd.Close()))
		}
		_ = unix.Removexattr(f.path, "trusted.drmfilter")
		must(t, os.Lchown(f.path, 1000, 1000))
		must(t, os.Chmod(f.path, f.mode))
	}
}

// diffDrain reads every event the programs have reported. They are
// written during the system call that caused them, so once the child has
// exited they are all in the ring buffer.
func diffDrain(t *testing.T, b *Backend) []Event {
	t.Helper()
	var evs []Event
	for {
		ev, err := b.ReadEvent(time.Now().Add(50 * time.Millisecond))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return evs
		}
		if err != nil {
			t.Fatalf("read events: %v", err)
		}
		evs = append(evs, ev)
		if len(evs) > 1<<16 {
			t.Fatalf("more than %d events", len(evs))
		}
	}
}

func diffDescribe(d *policy.Decision) string {
	s := d.Verdict.String()
	if !d.Covered {
		return s + " (not covered)"
	}
	if d.Rule != "" {
		s += " by " + d.Policy + "/" + d.Rule + " (" + d.Effect.String() + ")"
	}
	if d.WouldDeny {
		s += ", would deny by " + d.WouldPolicy + "/" + d.WouldRule
	}
	if d.Audit {
		s += ", audited"
	}
	return s
}

func diffEventString(e diffEvent, byIno map[uint64]*diffFile) string {
	name := fmt.Sprintf("inode %d", e.ino)
	if f := byIno[e.ino]; f != nil {
		name = f.rel
	}
	s := fmt.Sprintf("{%s %s", name, opName(e.op))
	if e.denied {
		s += " denied"
	}
	if e.wouldDeny {
		s += " would-deny by " + e.wouldRule
	}
	if e.rule != "" {
		s += " rule " + e.rule
	}
	return s + "}"
}

// diffGenOps draws the operations of one child.
func diffGenOps(r *rand.Rand, files []*diffFile, root bool, out, keep string) []diffOp {
	total := 0
	for _, k := range diffKinds {
		total += k.weight
	}
	n := 20 + r.IntN(6)
	var ops []diffOp
	seen := map[string]bool{}
	destroyed := map[*diffFile]bool{}
	for tries := 0; len(ops) < n && tries < 1000; tries++ {
		w := r.IntN(total)
		ki := 0
		for ; w >= diffKinds[ki].weight; ki++ {
			w -= diffKinds[ki].weight
		}
		k := &diffKinds[ki]
		f := files[r.IntN(len(files))]
		if (k.rootOnly && !root) || (k.execOnly && !f.exec) || seen[k.kind+" "+f.rel] || (k.phase == 3 && destroyed[f]) {
			continue
		}
		seen[k.kind+" "+f.rel] = true
		o := diffOp{kind: k.kind, f: f, ins: k.ins}
		flat := fmt.Sprintf("u%d_%s", f.universe, strings.ReplaceAll(f.rel, "/", "_"))
		switch k.kind {
		case "rename":
			o.target = filepath.Join(out, flat+".renamed")
		case "link":
			o.target = filepath.Join(out, flat+".link")
		case "unlink":
			o.target = filepath.Join(keep, flat)
		}
		if k.phase == 3 {
			destroyed[f] = true
		}
		ops = append(ops, o)
	}
	return ops
}

// diffSortOps puts operations in phase order.
func diffSortOps(ops []diffOp) {
	phase := map[string]int{}
	for _, k := range diffKinds {
		phase[k.kind] = k.phase
	}
	slices.SortStableFunc(ops, func(a, b diffOp) int { return phase[a.kind] - phase[b.kind] })
}

// diffGenSet draws a policy set over one tree that loads on its own; its
// policies are named u<universe>p<i>.
func diffGenSet(t *testing.T, r *rand.Rand, universe int, tree, plainExe, keeperExe, script, class string) string {
	t.Helper()
	for tries := 0; tries < 100; tries++ {
		var b strings.Builder
		n := 2 + r.IntN(3)
		for i := 0; i < n; i++ {
			diffGenPolicy(&b, r, fmt.Sprintf("u%dp%d", universe, i), tree, plainExe, keeperExe, script, class)
		}
		text := b.String()
		if _, err := policy.Load([]policy.Source{{Name: "diff.yaml", Data: []byte(text)}}, policy.LoadOptions{}); err == nil {
			return text
		}
		// A rule that can never decide, a path also excluded: draw again.
	}
	t.Fatal("no loadable policy set in 100 draws")
	return ""
}

var (
	// Broad globs more often than narrow ones, so that most files are
	// covered by some policy, many by several.
	diffPaths    = []string{"**", "**", "a/**", "a/**", "b/**", "b/**", "a/x/**", "**/*.txt", "a/*.txt", "*/x/**", "a/?", "b/n", "c/*", "a/x/y/**"}
	diffExcludes = []string{"a/x/**", "**/k", "b/n", "a/*.txt", "**/true", "a/x/y/*"}
	diffOpNames  = policy.OperationNames()
)

func diffGenPolicy(b *strings.Builder, r *rand.Rand, name, tree, plainExe, keeperExe, script, class string) {
	pick := func(list []string, n int) []string {
		var out []string
		for _, j := range r.Perm(len(list))[:n] {
			if !slices.Contains(out, list[j]) {
				out = append(out, list[j])
			}
		}
		return out
	}
	quoted := func(list []string, prefix string) string {
		q := make([]string, len(list))
		for j, s := range list {
			q[j] = strconv.Quote(prefix + s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	fmt.Fprintf(b, "---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: %s}\nspec:\n", name)
	if r.IntN(5) == 0 {
		b.WriteString("  mode: audit\n")
	}
	b.WriteString("  files:\n")
	fmt.Fprintf(b, "    paths: %s\n", quoted(pick(diffPaths, 1+r.IntN(2)), tree+"/"))
	if r.IntN(4) == 0 {
		b.WriteString("    extensions: [txt]\n")
	}
	if r.IntN(4) == 0 {
		fmt.Fprintf(b, "    excludePaths: %s\n", quoted(pick(diffExcludes, 1), tree+"/"))
	}
	switch r.IntN(20) {
	case 0, 1:
		b.WriteString("    filesystems: [tmpfs]\n")
	case 2:
		b.WriteString("    filesystems: [ext4]\n")
	case 3, 4:
		fmt.Fprintf(b, "    storageClasses: [%s]\n", class)
	case 5:
		b.WriteString("    storageClasses: [network]\n")
	}
	b.WriteString("  rules:\n")
	n := 2 + r.IntN(3)
	for j := 0; j < n; j++ {
		fmt.Fprintf(b, "    - name: %s-r%d\n", name, j)
		if j == n-1 && r.IntN(5) < 3 {
			// A catch-all, as most real policies end with.
			fmt.Fprintf(b, "      operations: [%s]\n      effect: deny\n", strings.Join(pick(diffOpNames, 3+r.IntN(4)), ", "))
			continue
		}
		fmt.Fprintf(b, "      operations: [%s]\n", strings.Join(pick(diffOpNames, 1+r.IntN(4)), ", "))
		effect := "deny"
		switch x := r.IntN(10); {
		case x < 4:
			effect = "allow"
		case x < 6:
			effect = "audit"
		}
		fmt.Fprintf(b, "      effect: %s\n", effect)
		if r.IntN(4) == 0 {
			continue // every process
		}
		var parts []string
		if r.IntN(2) == 0 {
			parts = append(parts, "executables: "+quoted([][]string{{plainExe}, {keeperExe}, {plainExe, keeperExe}}[r.IntN(3)], ""))
		}
		if r.IntN(4) == 0 {
			parts = append(parts, fmt.Sprintf("scripts: [%q]", script))
		}
		if r.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf("users: [%q]", []string{"0", "1000"}[r.IntN(2)]))
		}
		if r.IntN(4) == 0 {
			parts = append(parts, fmt.Sprintf("groups: [%q]", []string{"0", "1000", "2000"}[r.IntN(3)]))
		}
		if len(parts) == 0 {
			parts = append(parts, fmt.Sprintf("users: [%q]", []string{"0", "1000"}[r.IntN(2)]))
		}
		fmt.Fprintf(b, "      subjects: {%s}\n", strings.Join(parts, ", "))
	}
}

// diffEntry describes how the kernel places a file: its own entry in
// the programs' files map (and whether the kernel added it, keeping a
// file renamed or linked), and the plan's.
func diffEntry(b *Backend, f *diffFile) string {
	k := FileKey{Dev: f.dev, Ino: f.ino}
	b.mu.Lock()
	g := b.cur
	b.mu.Unlock()
	rules := func(c uint32) string {
		if int(c) >= len(g.plan.Classes) {
			return fmt.Sprintf("class %d (not in the plan)", c)
		}
		var names []string
		for _, r := range g.plan.Classes[c].Rules {
			names = append(names, g.plan.Rules[r].Policy+"/"+g.plan.Rules[r].Name)
		}
		return fmt.Sprintf("class %d %v (example %s)", c, names, g.plan.Classes[c].Example)
	}
	out := "plan: no entry of its own"
	if c, ok := g.plan.Files[k]; ok {
		out = "plan: " + rules(c)
	}
	var v lsmFval
	if err := g.objs.Files.Lookup(&lsmFkey{Dev: k.Dev, Ino: k.Ino}, &v); err == nil {
		out += fmt.Sprintf("; kernel: %s, flags %d", rules(v.Cls), v.Flags)
		if v.Flags&1 != 0 {
			out += " (kept)"
		}
	} else {
		out += "; kernel: no entry of its own"
	}
	return out
}
