package bpflsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/policy"
)

// Options tune Load.
type Options struct {
	// AgentPID is the process whose operations the programs never decide
	// (the agent itself, which reads protected files to hash them); 0
	// means this process.
	AgentPID int
	// MaxFiles bounds the files the kernel keeps entries for: the plan's
	// and those it adds itself when a covered file is renamed or linked
	// out of its tree. 0: twice the plan's files, at least 65,536.
	MaxFiles int
	// PinPath is a directory on a BPF filesystem where the links and
	// shared maps are pinned, so that the programs go on deciding when
	// this process is gone; Load takes over what an agent that is gone
	// pinned there. "": nothing is pinned, and Close detaches.
	PinPath string
	// TrustedCodeDirs are the directories whose files (owned by root,
	// writable by no one else, at any depth below) a process may map
	// executable and keep the allowances rules give its executable.
	TrustedCodeDirs []string
	// Keyed records that administration needs a signature (the agent
	// has admin keys): the agent's executable alone may not then name a
	// successor for pinned programs whose agent is gone.
	Keyed bool
	// Protect refuses other processes, root included, signals to the
	// agent, attaching to it (ptrace, /proc/PID/mem), descriptors for its
	// BPF objects, removing its pins and unmounting their filesystem.
	Protect bool
	// LockKernel refuses every process, root and the agent included,
	// loading a kernel module (init_module, finit_module) or a kernel to
	// kexec (kexec_load, kexec_file_load) while the programs enforce: the
	// two ways root could otherwise detach them at run time. It holds
	// until the programs are unloaded (drmfilter stop --unload).
	LockKernel bool
}

// Backend is the loaded programs of one policy generation, and the maps
// every generation shares (the executables recorded at exec, the event
// ring buffer, the counters, the guard). Replace swaps in a new
// generation with no moment in which neither decides.
type Backend struct {
	opts Options

	mu   sync.Mutex // guards cur, gen, prev and exes
	cur  *generation
	gen  uint32
	prev *Plan // the plan before cur's, to name events it decided
	// exes names executables by identity, from the programs' reports of
	// execs: a process denied something may be gone before its record is
	// written. Bounded: cleared when full.
	exes   map[FileKey]string
	shared map[string]*ebpf.Map // sharedMaps by name
	rd     *ringbuf.Reader
	// tookOver is the generation Load found pinned, 0 if none.
	tookOver uint32
}

// generation is one loaded set of programs and their policy maps.
type generation struct {
	objs      lsmObjects
	links     []link.Link
	linkNames []string  // the program of each link
	meta      *ebpf.Map // each class's example path (pinned as gen_classes)
	plan      *Plan
	gen       uint32
	pinned    bool // opened from pins: only links, files and meta
}

func (g *generation) close() {
	for _, l := range g.links {
		_ = l.Close()
	}
	_ = g.meta.Close()
	_ = g.objs.Close()
}

// Load loads and attaches the programs with the plan's maps. With
// Options.PinPath it takes over the programs pinned there by an agent
// that is gone: the shared maps (the executables processes run, the
// counters, the events not read yet) are the pinned ones, the files the
// kernel kept are carried into the new generation, and the pinned
// programs are detached only once the new ones are attached.
func Load(plan *Plan, opts Options) (*Backend, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("bpf: raise the locked-memory limit: %w", err)
	}
	if opts.AgentPID == 0 {
		opts.AgentPID = os.Getpid()
	}
	spec, err := loadLsm()
	if err != nil {
		return nil, fmt.Errorf("bpf: read the programs: %w", err)
	}
	b := &Backend{opts: opts, exes: map[FileKey]string{}, shared: map[string]*ebpf.Map{}}
	var old *generation
	if opts.PinPath != "" {
		if err := ensureBPFFS(opts.PinPath); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(opts.PinPath, 0o700); err != nil {
			return nil, fmt.Errorf("bpf: the pin directory: %w", err)
		}
		if Pinned(opts.PinPath) {
			if old, err = b.openPinned(); err != nil {
				b.closeShared()
				return nil, err
			}
		}
	}
	if old == nil {
		for _, name := range sharedMaps {
			m, err := ebpf.NewMap(spec.Maps[name])
			if err != nil {
				b.closeShared()
				return nil, fmt.Errorf("bpf: create map %s: %w", name, err)
			}
			b.shared[name] = m
		}
	}
	fail := func(err error) (*Backend, error) {
		if old != nil {
			old.close()
		}
		b.closeShared()
		return nil, err
	}
	// This process is the agent from here on: the programs (the pinned
	// ones too) exempt it, and guard it.
	if err := b.writeGuard(); err != nil {
		return fail(err)
	}
	gen := uint32(1)
	if old != nil {
		gen = old.gen + 1
	}
	g, err := b.load(plan, gen)
	if err != nil {
		return fail(err)
	}
	if old != nil {
		kept, err := keptFiles(old, plan)
		if err == nil {
			err = putFiles(g.objs.Files, kept, 1)
		}
		if err != nil {
			g.close()
			return fail(err)
		}
	}
	if err := b.start(g, old); err != nil {
		g.close()
		return fail(err)
	}
	if old != nil {
		b.tookOver = old.gen
	}
	b.cur, b.gen = g, gen
	rd, err := ringbuf.NewReader(b.shared["events"])
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("bpf: read events: %w", err)
	}
	b.rd = rd
	return b, nil
}

// start attaches g, pins it over old's pins, records its objects as the
// agent's, and closes old (whose programs are detached when their last
// reference, a pin replaced or this process's descriptor, goes).
func (b *Backend) start(g *generation, old *generation) error {
	if err := g.attach(); err != nil {
		return err
	}
	if b.opts.PinPath != "" {
		meta, err := classMeta(g.plan)
		if err != nil {
			return err
		}
		g.meta = meta
		if err := b.pin(g); err != nil {
			return err
		}
	}
	if err := b.own(g); err != nil {
		return err
	}
	if old != nil {
		// Files the old programs kept between the first look and the
		// attach (from the attach on the new programs keep them too).
		if late, err := keptFiles(old, g.plan); err == nil {
			_ = putFiles(g.objs.Files, late, 1)
		}
		if b.opts.PinPath != "" {
			unpinStale(b.opts.PinPath, old, g)
		}
		b.disown(old)
		old.close()
	}
	return nil
}

// pinnedGeneration is the generation number the pinned settings hold, 0
// when unknown.
func pinnedGeneration(dir string) uint32 {
	m, err := ebpf.LoadPinnedMap(dir+"/gen_settings", nil)
	if err != nil {
		return 0
	}
	defer m.Close()
	var c lsmConfig
	if m.Lookup(uint32(0), &c) != nil {
		return 0
	}
	return c.Generation
}

// TookOver is the generation of the pinned programs Load took over, 0 if
// it found none.
func (b *Backend) TookOver() uint32 { return b.tookOver }

func (b *Backend) closeShared() {
	for _, m := range b.shared {
		_ = m.Close()
	}
}

// load loads a generation's programs and fills its maps; nothing is
// attached yet.
func (b *Backend) load(plan *Plan, gen uint32) (*generation, error) {
	spec, err := loadLsm()
	if err != nil {
		return nil, fmt.Errorf("bpf: read the programs: %w", err)
	}
	maxFiles := b.opts.MaxFiles
	if maxFiles == 0 {
		maxFiles = max(65536, 2*len(plan.Files))
	}
	if len(plan.Files) > maxFiles {
		return nil, fmt.Errorf("bpf: the policies cover %d files with entries of their own, more than the limit of %d", len(plan.Files), maxFiles)
	}
	spec.Maps["files"].MaxEntries = uint32(maxFiles)
	spec.Maps["places"].MaxEntries = uint32(max(1, len(plan.Places)))
	spec.Maps["classes"].MaxEntries = uint32(max(1, len(plan.Classes)))
	spec.Maps["rules"].MaxEntries = uint32(max(1, len(plan.Rules)))
	// Room for the executables the programs learn at renames (follow).
	spec.Maps["rule_subj"].MaxEntries = uint32(max(256, 2*len(plan.Subjects)+4*len(plan.ExeNames)))
	spec.Maps["exe_names"].MaxEntries = uint32(max(1, len(plan.ExeNames)))
	g := &generation{plan: plan, gen: gen}
	err = spec.LoadAndAssign(&g.objs, &ebpf.CollectionOptions{
		MapReplacements: b.shared,
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("bpf: load the programs: %+v", ve)
		}
		return nil, fmt.Errorf("bpf: load the programs: %w", err)
	}
	plan.loaded = true
	if err := g.fill(plan, gen); err != nil {
		g.close()
		return nil, err
	}
	if err := fillTrusted(g.objs.TrustedDirs, b.opts.TrustedCodeDirs); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *generation) fill(plan *Plan, gen uint32) error {
	o := &g.objs
	for i, r := range plan.Rules {
		v := lsmRule{Ops: r.Ops, Effect: r.Effect, Flags: r.Flags}
		if err := o.Rules.Put(uint32(i), &v); err != nil {
			return fmt.Errorf("bpf: rule %d: %w", i, err)
		}
	}
	for i, c := range plan.Classes {
		v := lsmCls{N: uint32(len(c.Rules)), N_enforce: uint32(c.Enforce)}
		copy(v.Rule[:], c.Rules)
		if err := o.Classes.Put(uint32(i), &v); err != nil {
			return fmt.Errorf("bpf: class %d: %w", i, err)
		}
	}
	for _, s := range plan.Subjects {
		k := lsmRkey{Rule: s.Rule, Kind: s.Kind, Dev: s.Dev, Val: s.Val}
		if err := o.RuleSubj.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("bpf: rule subject: %w", err)
		}
	}
	const sbPlaces, sbNames, sbExts, sbExes = 1, 2, 4, 8 // SB_PLACES, SB_NAMES, SB_EXTS, SB_EXES
	sbs := map[uint32]uint32{}
	for k, c := range plan.Places {
		if err := o.Places.Put(&lsmPkey{Dev: k.Dev, Kind: k.Kind, Dir: k.Dir, Hash: k.Hash}, &lsmFval{Cls: c}); err != nil {
			return fmt.Errorf("bpf: place entry: %w", err)
		}
		sbs[k.Dev] |= sbPlaces
		switch k.Kind {
		case plName:
			sbs[k.Dev] |= sbNames
		case plChildExt, plTreeExt:
			sbs[k.Dev] |= sbExts
		}
	}
	for k, rules := range plan.ExeNames {
		if len(rules) > maxExeRules {
			return fmt.Errorf("bpf: %d rules name the same executable; the bpf backend follows at most %d", len(rules), maxExeRules)
		}
		v := lsmExeRules{N: uint32(len(rules))}
		copy(v.Rule[:], rules)
		if err := o.ExeNames.Put(&lsmNkey{Dev: k.Dev, Dir: k.Dir, Hash: k.Hash}, &v); err != nil {
			return fmt.Errorf("bpf: executable name entry: %w", err)
		}
		sbs[k.Dev] |= sbExes
	}
	for dev, f := range sbs {
		if err := o.Sbs.Put(dev, f); err != nil {
			return fmt.Errorf("bpf: filesystem entry: %w", err)
		}
	}
	if err := putFiles(o.Files, plan.Files, 0); err != nil {
		return err
	}
	cfg := lsmConfig{Ops: plan.Ops, Generation: gen}
	if err := o.Settings.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("bpf: settings: %w", err)
	}
	return nil
}

// fillTrusted puts the trusted code directories in the map, by
// identity; a directory that does not exist is left out.
func fillTrusted(m *ebpf.Map, dirs []string) error {
	for _, d := range dirs {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			continue
		}
		k := lsmFkey{Dev: KernelDev(st.Dev), Ino: st.Ino}
		if err := m.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("bpf: trusted code directory %s: %w", d, err)
		}
	}
	return nil
}

func putFiles(m *ebpf.Map, files map[FileKey]uint32, flags uint32) error {
	if len(files) == 0 {
		return nil
	}
	keys := make([]lsmFkey, 0, len(files))
	vals := make([]lsmFval, 0, len(files))
	for k, c := range files {
		keys = append(keys, lsmFkey{Dev: k.Dev, Ino: k.Ino})
		vals = append(vals, lsmFval{Cls: c, Flags: flags})
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		// Kernels without batch operations on hash maps: one by one.
		for i := range keys {
			if err := m.Put(&keys[i], &vals[i]); err != nil {
				return fmt.Errorf("bpf: file entry: %w", err)
			}
		}
	}
	return nil
}

func (g *generation) attach() error {
	for name, p := range g.objs.programs() {
		l, err := link.AttachLSM(link.LSMOptions{Program: p})
		if err != nil {
			return fmt.Errorf("bpf: attach %s: %w", name, err)
		}
		g.links = append(g.links, l)
		g.linkNames = append(g.linkNames, name)
	}
	return nil
}

// programs are every program of the object, by the name of its hook
// (every one is attached: bpf2go's struct has them all).
func (o *lsmObjects) programs() map[string]*ebpf.Program {
	out := map[string]*ebpf.Program{}
	v := reflect.ValueOf(&o.lsmPrograms).Elem()
	for i := range v.NumField() {
		if p, ok := v.Field(i).Interface().(*ebpf.Program); ok {
			out[v.Type().Field(i).Tag.Get("ebpf")] = p
		}
	}
	return out
}

// Replace switches to a new policy generation: its programs are loaded
// and their maps filled, the files the kernel kept by identity (renamed
// or linked out of their trees) are carried into them, the new programs
// are attached and only then the old ones detached. While both are
// attached an operation is denied if either generation denies it, so
// every decision is the old policy's or the new one's.
func (b *Backend) Replace(plan *Plan) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.cur
	if old == nil {
		return errors.New("bpf: the backend is closed")
	}
	// The files the old programs keep by identity, with their classes in
	// the new plan (added to it before it is loaded).
	kept, err := keptFiles(old, plan)
	if err != nil {
		return err
	}
	g, err := b.load(plan, b.gen+1)
	if err != nil {
		return err
	}
	if err := putFiles(g.objs.Files, kept, 1); err != nil {
		g.close()
		return err
	}
	if err := b.start(g, old); err != nil {
		g.close()
		return err
	}
	b.cur, b.gen, b.prev = g, b.gen+1, old.plan
	return nil
}

// keptFiles are the entries the kernel added to old's files map (a
// covered file renamed or linked out of its tree), with the class the new
// plan gives the tree they came from.
func keptFiles(old *generation, plan *Plan) (map[FileKey]uint32, error) {
	out := map[FileKey]uint32{}
	if old.objs.Files == nil {
		return out, nil // pinned by an agent killed before it pinned its files map
	}
	var k lsmFkey
	var v lsmFval
	it := old.objs.Files.Iterate()
	for it.Next(&k, &v) {
		if v.Flags&1 == 0 {
			continue
		}
		fk := FileKey{Dev: k.Dev, Ino: k.Ino}
		if _, ok := plan.Files[fk]; ok || plan.walked[fk] {
			continue // the new plan places it from where it is now
		}
		if int(v.Cls) >= len(old.plan.Classes) {
			continue
		}
		if c, ok := plan.classFor(old.plan.Classes[v.Cls]); ok {
			out[fk] = c
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("bpf: read the kept files: %w", err)
	}
	return out, nil
}

// Plan is the plan in force.
func (b *Backend) Plan() *Plan {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil
	}
	return b.cur.plan
}

// Generation is the policy generation in force.
func (b *Backend) Generation() uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.gen
}

// Counters are the programs' counts since Load.
type Counters struct {
	Covered   uint64 // operations on covered files decided
	Denied    uint64
	WouldDeny uint64
	Lost      uint64 // events the ring buffer had no room for
}

// Counters sums the per-CPU counters.
func (b *Backend) Counters() (Counters, error) {
	var c Counters
	for i, dst := range []*uint64{&c.Covered, &c.Denied, &c.WouldDeny, &c.Lost} {
		var per []uint64
		if err := b.shared["counters"].Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("bpf: counters: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return c, nil
}

// Event is one decision the programs report: every deny, audit and
// would-deny.
type Event struct {
	Dev       uint32
	Ino       uint64
	ExeDev    uint32
	ExeIno    uint64
	Cgroup    uint64
	PID, TGID uint32
	UID, GID  uint32
	Op        uint32
	Denied    bool
	WouldDeny bool
	Unplaced  bool // deeper than the programs walk: denied
	NoClass   bool // the maps were inconsistent: denied
	IndexFull bool // a file could not keep its own entry: denied
	// Taint says why rules naming executables did not apply to the
	// process: it runs code its executable does not account for
	// ("LD_PRELOAD or LD_AUDIT", "an untrusted file mapped executable",
	// ...); empty when it runs only trusted code.
	Taint     []string
	Rule      *Rule
	WouldRule *Rule
	// Path names the file: from the plan's entries, else its directory's
	// entry and the name the kernel gave (a file created since the walk);
	// "" when neither is known, and then Name is the file's name alone.
	Path string
	Name string
	// Exe is the executable's path as its exec named it, when the programs
	// reported that exec (since Load); "" otherwise.
	Exe        string
	Comm       string
	Generation uint32
	// Tamper is set on a refused attempt on the agent itself (its
	// process, BPF objects or pins); the fields about a file are then
	// empty.
	Tamper *Tamper
}

// Tamper says what a tamper event refused.
type Tamper struct {
	What      string // signal, ptrace, bpf-map, bpf-prog, bpf-link, pin, umount, exec-traced
	Arg       uint32 // the signal, the ptrace mode, the map's, program's or link's ID, the umount flags
	TargetPID uint32 // signal, ptrace: the process aimed at
	Dev       uint32 // pin, umount, exec-traced: the filesystem (kernel encoding)
	Ino       uint64 // pin: the pin's inode; exec-traced: the executable's
}

// taintNames says what P_TAINT_* flags mean.
func taintNames(t uint32) []string {
	var out []string
	for _, x := range []struct {
		bit  uint32
		what string
	}{{1 << 1, "started with LD_PRELOAD or LD_AUDIT"}, {1 << 2, "mapped an untrusted file executable"},
		{1 << 3, "made anonymous memory executable"}, {1 << 4, "attached to by another process (ptrace, /proc/PID/mem, process_vm_writev)"}} {
		if t&x.bit != 0 {
			out = append(out, x.what)
		}
	}
	return out
}

// tamperWhat names TAMPER_* values.
var tamperWhat = map[uint32]string{1: "signal", 2: "ptrace", 3: "bpf-map", 4: "bpf-prog", 5: "bpf-link", 6: "pin", 7: "umount", 8: "exec-traced", 9: "file", 10: "kernel-load"}

// String says in words what was refused.
func (t *Tamper) String() string {
	switch t.What {
	case "signal":
		return fmt.Sprintf("signal %d to the agent (pid %d)", t.Arg, t.TargetPID)
	case "ptrace":
		return fmt.Sprintf("attaching to the agent or its executable (pid %d, ptrace mode %#x)", t.TargetPID, t.Arg)
	case "bpf-map", "bpf-prog", "bpf-link":
		return fmt.Sprintf("a descriptor for the agent's %s %d", strings.TrimPrefix(t.What, "bpf-"), t.Arg)
	case "pin":
		return "removing or renaming the agent's pins"
	case "umount":
		return "unmounting the filesystem of the agent's pins"
	case "exec-traced":
		return "starting the agent's executable under a tracer"
	case "kernel-load":
		what := map[uint32]string{2: "a kernel module", 3: "a kernel to kexec", 4: "an initramfs to kexec"}[t.Arg]
		if what == "" {
			what = fmt.Sprintf("kernel data of kind %d", t.Arg)
		}
		return "loading " + what + " (bpf.lockKernel)"
	case "file":
		var what []string
		for bit, w := range map[uint32]string{SealContent: "its content or attributes", SealName: "its name", SealEntries: "the entries of the directory"} {
			if t.Arg&bit != 0 {
				what = append(what, w)
			}
		}
		slices.Sort(what)
		return fmt.Sprintf("changing one of the agent's files (inode %d): %s", t.Ino, strings.Join(what, ", "))
	}
	return t.What
}

// Operation is the event's operation in the policy language.
func (e *Event) Operation() policy.Operation { return opName(e.Op) }

// maxExes bounds Backend.exes.
const maxExes = 16384

// ReadEvent waits for the next event until the deadline (zero: none).
func (b *Backend) ReadEvent(deadline time.Time) (Event, error) {
	b.rd.SetDeadline(deadline)
	for {
		rec, err := b.rd.Read()
		if err != nil {
			return Event{}, err
		}
		if len(rec.RawSample) >= 4 && binary.NativeEndian.Uint32(rec.RawSample) == evKindExe {
			b.learnExe(rec.RawSample)
			continue
		}
		if len(rec.RawSample) >= 4 && binary.NativeEndian.Uint32(rec.RawSample) == evKindTamper {
			return b.decodeTamper(rec.RawSample)
		}
		return b.decode(rec.RawSample)
	}
}

// Ring buffer record kinds (EV_KIND_*).
const (
	evKindDecision = 1
	evKindExe      = 2
	evKindTamper   = 3
)

func (b *Backend) decodeTamper(raw []byte) (Event, error) {
	var e lsmTamperEvent
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, &e); err != nil {
		return Event{}, fmt.Errorf("bpf: decode a tamper event: %w", err)
	}
	ev := Event{ExeDev: e.ExeDev, ExeIno: e.ExeIno, PID: e.Pid, TGID: e.Tgid, UID: e.Uid, GID: e.Gid, Denied: true,
		Comm:   cString(e.Comm[:]),
		Tamper: &Tamper{What: tamperWhat[e.What], Arg: e.Arg, TargetPID: e.TargetPid, Dev: e.TargetDev, Ino: e.TargetIno}}
	if ev.Tamper.What == "" {
		ev.Tamper.What = fmt.Sprintf("kind-%d", e.What)
	}
	b.mu.Lock()
	ev.Exe = b.exes[FileKey{Dev: e.ExeDev, Ino: e.ExeIno}]
	b.mu.Unlock()
	return ev, nil
}

func (b *Backend) learnExe(raw []byte) {
	var e lsmExeEvent
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, &e); err != nil {
		return
	}
	p := cString(e.Path[:])
	if !strings.HasPrefix(p, "/") {
		return // relative to a working directory the agent does not know
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.exes) >= maxExes {
		clear(b.exes)
	}
	b.exes[FileKey{Dev: e.Dev, Ino: e.Ino}] = p
}

func (b *Backend) decode(raw []byte) (Event, error) {
	var e lsmEvent
	if err := binary.Read(bytes.NewReader(raw), binary.NativeEndian, &e); err != nil {
		return Event{}, fmt.Errorf("bpf: decode an event: %w", err)
	}
	ev := Event{Dev: e.Dev, Ino: e.Ino, ExeDev: e.ExeDev, ExeIno: e.ExeIno, Cgroup: e.Cgroup, PID: e.Pid, TGID: e.Tgid,
		UID: e.Uid, GID: e.Gid, Op: e.Op, Generation: e.Generation,
		Denied: e.Flags&1 != 0, WouldDeny: e.Flags&4 != 0, Unplaced: e.Flags&8 != 0, NoClass: e.Flags&16 != 0, IndexFull: e.Flags&32 != 0}
	ev.Comm = cString(e.Comm[:])
	ev.Name = cString(e.Name[:])
	ev.Taint = taintNames(e.Taint)
	b.mu.Lock()
	var plan *Plan
	switch {
	case b.cur != nil && e.Generation == b.cur.gen:
		plan = b.cur.plan
	case b.prev != nil && e.Generation+1 == b.gen:
		plan = b.prev // decided by the programs a Replace detached since
	}
	ev.Exe = b.exes[FileKey{Dev: e.ExeDev, Ino: e.ExeIno}]
	b.mu.Unlock()
	if plan != nil {
		if r := int(e.Rule) - 1; r >= 0 && r < len(plan.Rules) {
			ev.Rule = &plan.Rules[r]
		}
		if r := int(e.WouldRule) - 1; r >= 0 && r < len(plan.Rules) {
			ev.WouldRule = &plan.Rules[r]
		}
		ev.Path = plan.Paths[FileKey{Dev: e.Dev, Ino: e.Ino}]
		if dir, ok := plan.Paths[FileKey{Dev: e.Dev, Ino: e.ParentIno}]; ok && ev.Path == "" && ev.Name != "" {
			ev.Path = strings.TrimSuffix(dir, "/") + "/" + ev.Name
		}
	}
	return ev, nil
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// ErrClosed is returned by ReadEvent after Close.
var ErrClosed = ringbuf.ErrClosed

// Close closes the backend. Without Options.PinPath that detaches the
// programs: the kernel stops deciding. With it the pinned programs go on
// deciding, with the last policy, until an agent takes them over or
// Unload removes them.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rd != nil {
		_ = b.rd.Close()
	}
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	b.closeShared()
	return nil
}

// Unload removes the pins and closes: the programs are detached and the
// kernel stops deciding. The authorized stop of the agent calls it.
func (b *Backend) Unload() error {
	var err error
	if b.opts.PinPath != "" {
		// Unguarded first, so that nothing refuses the removal.
		var g lsmGuardState
		if m := b.shared["guard"]; m != nil && m.Lookup(uint32(0), &g) == nil {
			g.Flags &^= guardProtect
			_ = m.Put(uint32(0), &g)
		}
		err = Unpin(b.opts.PinPath)
	}
	return errors.Join(err, b.Close())
}
