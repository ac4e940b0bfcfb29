package bpflsm

// Pinning and self-protection. With Options.PinPath the programs' links
// and the maps every generation shares are pinned on a BPF filesystem, so
// the kernel goes on deciding when the agent is gone (killed, crashed,
// upgraded); the next Load takes the pinned state over. The pin directory
// holds, flat:
//
//	map_<name>   the shared maps (procs, scripts, events, counters, guard, owned, sealed)
//	link_<prog>  the current generation's link of each program
//	gen_files    its files map (the entries the kernel kept are carried over)
//	gen_classes  the example path of each of its classes (to give a kept
//	             entry its class in the next plan)
//
// With Options.Protect the programs refuse every other process, root
// included, signals to the agent, attaching to it, descriptors for its
// maps, programs and links, removing the pins and unmounting their
// filesystem (see the guard and owned maps in bpf/drmfilter.bpf.c).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/mountinfo"
)

// sharedMaps are the maps every generation uses (user space hands the
// same ones to each).
var sharedMaps = []string{"procs", "scripts", "events", "counters", "guard", "owned", "sealed"}

const (
	guardProtect = 1 // GUARD_PROTECT
	guardSealed  = 2 // GUARD_SEALED
	guardSucc    = 4 // GUARD_SUCC
	guardKeyed   = 8 // GUARD_KEYED
	// guardLockKernel is GUARD_LOCK_KERNEL.
	guardLockKernel = 16
	maxGuardDevs    = 4 // MAX_GUARD_DEVS

	ownMap  = 1 // OWN_MAP
	ownProg = 2 // OWN_PROG
	ownLink = 3 // OWN_LINK

	classExampleSize = 4096 // the value size of gen_classes
)

// ErrAgentRunning is matched by Load's error when the pinned programs
// belong to an agent that is still running.
var ErrAgentRunning = errors.New("another agent runs the pinned programs")

// Pinned says whether there are pinned programs at dir (an agent's, alive
// or gone).
func Pinned(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "map_guard"))
	return err == nil
}

// PinnedAgent is the process ID of the agent the pinned state at dir
// names, and whether it still runs. It reads the guard map, which only a
// trusted process may (an agent, or the agent's executable).
func PinnedAgent(dir string) (pid int, alive bool, err error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "map_guard"), nil)
	if err != nil {
		return 0, false, fmt.Errorf("bpf: open the pinned guard map: %w", err)
	}
	defer m.Close()
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return 0, false, fmt.Errorf("bpf: read the pinned guard map: %w", err)
	}
	return int(g.AgentTgid), alive0(g), nil
}

func alive0(g lsmGuardState) bool {
	if g.AgentTgid == 0 {
		return false
	}
	start, err := startTicks(int(g.AgentTgid))
	return err == nil && start == g.AgentStart
}

// startTicks is a process's start time as /proc/PID/stat gives it (field
// 22, clock ticks since boot): with the process ID it names one process,
// which a reused ID does not.
func startTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:]) // from field 3 (state) on
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// guardFor is what the guard map says of the agent pid, with pin
// directory dir ("" for none).
func guardFor(pid int, o Options) (lsmGuardState, error) {
	dir := o.PinPath
	var g lsmGuardState
	start, err := startTicks(pid)
	if err != nil {
		return g, fmt.Errorf("bpf: the agent's start time: %w", err)
	}
	g.AgentTgid, g.AgentStart = uint32(pid), start
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		return g, fmt.Errorf("bpf: the agent's executable: %w", err)
	}
	g.ExeDev, g.ExeIno = KernelDev(st.Dev), st.Ino
	if o.Protect {
		g.Flags |= guardProtect
	}
	if o.Keyed {
		g.Flags |= guardKeyed
	}
	if o.LockKernel {
		g.Flags |= guardLockKernel
	}
	if dir == "" {
		return g, nil
	}
	if err := unix.Stat(dir, &st); err != nil {
		return g, fmt.Errorf("bpf: the pin directory: %w", err)
	}
	g.PinDev, g.PinIno = KernelDev(st.Dev), st.Ino
	devs, err := mountDevs(dir)
	if err != nil {
		return g, err
	}
	copy(g.UmountDev[:], devs)
	return g, nil
}

// mountDevs are the devices of the filesystem holding dir and of those it
// is mounted below, nearest first, up to maxGuardDevs and short of the
// root filesystem: unmounting any of them (even lazily) would take the
// pins with it.
func mountDevs(dir string) ([]uint32, error) {
	mounts, err := mountinfo.Read("/", os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("bpf: the mounts above the pin directory: %w", err)
	}
	byID := map[int]mountinfo.Mount{}
	var at *mountinfo.Mount
	for i, m := range mounts {
		byID[m.ID] = m
		if m.MountPoint == dir || m.MountPoint == "/" || strings.HasPrefix(dir, strings.TrimSuffix(m.MountPoint, "/")+"/") {
			if at == nil || len(m.MountPoint) >= len(at.MountPoint) {
				at = &mounts[i]
			}
		}
	}
	var devs []uint32
	for m, seen := at, 0; m != nil && m.MountPoint != "/" && len(devs) < maxGuardDevs && seen < 64; seen++ {
		devs = append(devs, m.Major<<20|m.Minor)
		p, ok := byID[m.ParentID]
		if !ok || p.ID == m.ID {
			break
		}
		m = &p
	}
	return devs, nil
}

// writeGuard makes this process the agent the programs guard.
func (b *Backend) writeGuard() error {
	g, err := guardFor(b.opts.AgentPID, b.opts)
	if err != nil {
		return err
	}
	if err := b.shared["guard"].Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the guard map: %w", err)
	}
	return nil
}

// openPinned opens the shared maps pinned at PinPath and the generation
// they belong to, for a takeover: its links (still attached), its files
// map and its classes' examples. Missing pins of a generation are
// tolerated (an agent killed while it pinned); missing shared maps are
// not.
func (b *Backend) openPinned() (*generation, error) {
	dir := b.opts.PinPath
	for _, name := range sharedMaps {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "map_"+name), nil)
		if err != nil {
			return nil, fmt.Errorf("bpf: take over the pinned programs at %s: open map %s: %w "+
				"(only the running agent, or the agent's executable running untraced, may)", dir, name, err)
		}
		b.shared[name] = m
	}
	var g lsmGuardState
	if err := b.shared["guard"].Lookup(uint32(0), &g); err != nil {
		return nil, fmt.Errorf("bpf: read the pinned guard map: %w", err)
	}
	if alive0(g) && int(g.AgentTgid) != b.opts.AgentPID {
		return nil, fmt.Errorf("bpf: %w at %s (pid %d): stop it first (drmfilter stop)", ErrAgentRunning, dir, g.AgentTgid)
	}
	old := &generation{pinned: true, plan: &Plan{}, gen: pinnedGeneration(dir)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bpf: read the pin directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "link_"):
			l, err := link.LoadPinnedLink(filepath.Join(dir, name), nil)
			if err != nil {
				old.close()
				return nil, fmt.Errorf("bpf: open the pinned link %s: %w", name, err)
			}
			old.links = append(old.links, l)
			old.linkNames = append(old.linkNames, strings.TrimPrefix(name, "link_"))
		case name == "gen_files":
			m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
			if err != nil {
				old.close()
				return nil, fmt.Errorf("bpf: open the pinned files map: %w", err)
			}
			old.objs.Files = m
		case name == "gen_classes":
			m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
			if err != nil {
				old.close()
				return nil, fmt.Errorf("bpf: open the pinned classes: %w", err)
			}
			old.meta = m
			old.plan.Classes, err = readExamples(m)
			if err != nil {
				old.close()
				return nil, err
			}
		}
	}
	return old, nil
}

// classMeta records the example path of each of plan's classes in a map
// of the agent's (pinned as gen_classes), so that an agent taking over
// can give the files the kernel kept their class in its own plan.
func classMeta(plan *Plan) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "drm_classes", Type: ebpf.Array, KeySize: 4,
		ValueSize: classExampleSize, MaxEntries: uint32(max(1, len(plan.Classes)))})
	if err != nil {
		return nil, fmt.Errorf("bpf: create the classes map: %w", err)
	}
	for i, c := range plan.Classes {
		v := make([]byte, classExampleSize)
		if len(c.Example) < classExampleSize {
			copy(v, c.Example)
		}
		if err := m.Put(uint32(i), v); err != nil {
			m.Close()
			return nil, fmt.Errorf("bpf: write the classes map: %w", err)
		}
	}
	return m, nil
}

func readExamples(m *ebpf.Map) ([]Class, error) {
	n := int(m.MaxEntries())
	out := make([]Class, n)
	for i := range n {
		var v []byte
		if err := m.Lookup(uint32(i), &v); err != nil {
			return nil, fmt.Errorf("bpf: read the pinned classes: %w", err)
		}
		if j := slices.Index(v, 0); j >= 0 {
			v = v[:j]
		}
		out[i].Example = string(v)
	}
	return out, nil
}

// pin pins g (its links and maps) at PinPath, replacing the pins of the
// generation before it, and the shared maps when they are not pinned yet.
// A pin is made under a temporary name and renamed over the old one, so
// the path always holds an attached link.
func (b *Backend) pin(g *generation) error {
	dir := b.opts.PinPath
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bpf: the pin directory: %w", err)
	}
	for _, name := range sharedMaps {
		p := filepath.Join(dir, "map_"+name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := b.shared[name].Pin(p); err != nil {
			return fmt.Errorf("bpf: pin map %s: %w", name, err)
		}
	}
	put := func(name string, pinFn func(string) error) error {
		tmp := filepath.Join(dir, "new_"+name) // bpffs refuses names with a dot
		_ = os.Remove(tmp)
		if err := pinFn(tmp); err != nil {
			return fmt.Errorf("bpf: pin %s: %w", name, err)
		}
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, filepath.Join(dir, name), 0); err != nil {
			_ = os.Remove(tmp)
			return fmt.Errorf("bpf: pin %s: rename into place: %w", name, err)
		}
		return nil
	}
	for i, l := range g.links {
		if err := put("link_"+g.linkNames[i], l.Pin); err != nil {
			return err
		}
	}
	if err := put("gen_files", g.objs.Files.Pin); err != nil {
		return err
	}
	if err := put("gen_settings", g.objs.Settings.Pin); err != nil {
		return err
	}
	return put("gen_classes", g.meta.Pin)
}

// unpinStale removes the pins of old's links that g has no program for
// (a takeover by a version with fewer programs).
func unpinStale(dir string, old, g *generation) {
	for _, name := range old.linkNames {
		if !slices.Contains(g.linkNames, name) {
			_ = os.Remove(filepath.Join(dir, "link_"+name))
		}
	}
}

// Unpin removes every pin at dir and the directory: once the agent that
// holds them closes, the programs are detached. Only a trusted process
// may (the programs refuse everyone else).
func Unpin(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bpf: read the pin directory: %w", err)
	}
	var errs []error
	// The guard map last: until it goes, the rest stays guarded.
	slices.SortFunc(entries, func(a, b os.DirEntry) int {
		return boolCmp(a.Name() == "map_guard", b.Name() == "map_guard")
	})
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bpf: unpin: %w", err)
	}
	return nil
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// own records the IDs of g's maps, programs and links (and the shared
// maps) in the owned map, which the programs guard; disown removes old's.
func (b *Backend) own(g *generation) error {
	for _, id := range g.ids() {
		if err := b.shared["owned"].Put(id, uint8(1)); err != nil {
			return fmt.Errorf("bpf: record the agent's objects: %w", err)
		}
	}
	for _, m := range b.shared {
		if id, ok := mapID(m); ok {
			if err := b.shared["owned"].Put(uint64(ownMap)<<32|id, uint8(1)); err != nil {
				return fmt.Errorf("bpf: record the agent's objects: %w", err)
			}
		}
	}
	return nil
}

func (b *Backend) disown(old *generation) {
	for _, id := range old.ids() {
		_ = b.shared["owned"].Delete(id)
	}
}

func mapID(m *ebpf.Map) (uint64, bool) {
	if m == nil {
		return 0, false
	}
	info, err := m.Info()
	if err != nil {
		return 0, false
	}
	id, ok := info.ID()
	return uint64(id), ok
}

// ids are the owned-map keys of g's objects.
func (g *generation) ids() []uint64 {
	var out []uint64
	// Every map of the object, whatever bpf2go named it: one left out
	// would be open to every process by its ID.
	var maps []*ebpf.Map
	v := reflect.ValueOf(&g.objs.lsmMaps).Elem()
	for i := range v.NumField() {
		if m, ok := v.Field(i).Interface().(*ebpf.Map); ok {
			maps = append(maps, m)
		}
	}
	for _, m := range append(maps, g.meta) {
		if id, ok := mapID(m); ok {
			out = append(out, uint64(ownMap)<<32|id)
		}
	}
	for _, p := range g.objs.programs() {
		if p == nil {
			continue
		}
		if info, err := p.Info(); err == nil {
			if id, ok := info.ID(); ok {
				out = append(out, uint64(ownProg)<<32|uint64(id))
			}
		}
	}
	for _, l := range g.links {
		if info, err := l.Info(); err == nil {
			out = append(out, uint64(ownLink)<<32|uint64(info.ID))
		}
	}
	return out
}

// ensureBPFFS checks that dir is (or will be) on a BPF filesystem, and if
// not, mounts one at the conventional /sys/fs/bpf when dir is below it
// and nothing is mounted there.
func ensureBPFFS(dir string) error {
	parent := dir
	for {
		if _, err := os.Stat(parent); err == nil {
			break
		}
		parent = filepath.Dir(parent)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(parent, &fs); err != nil {
		return fmt.Errorf("bpf: the pin directory %s: %w", dir, err)
	}
	if fs.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	const conventional = "/sys/fs/bpf"
	if dir != conventional && !strings.HasPrefix(dir, conventional+"/") {
		return fmt.Errorf("bpf: the pin directory %s is not on a BPF filesystem (mount one: mount -t bpf bpf DIR)", dir)
	}
	if err := unix.Mount("bpf", conventional, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("bpf: mount a BPF filesystem at %s for the pins: %w", conventional, err)
	}
	return nil
}

// TrustSuccessor makes exe the executable trusted to take the pinned
// programs over (an upgrade: the agent that runs it next), in place of
// this agent's.
func (b *Backend) TrustSuccessor(exe string) error {
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		return fmt.Errorf("bpf: the new executable: %w", err)
	}
	m := b.shared["guard"]
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: read the guard map: %w", err)
	}
	g.ExeDev, g.ExeIno = KernelDev(st.Dev), st.Ino
	if err := m.Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the guard map: %w", err)
	}
	return nil
}

// What Seal refuses to every process but the agent (SEAL_* in the
// programs).
const (
	SealContent = 1 // write, truncate, chmod, chown, xattrs
	SealName    = 2 // unlink, rename, hard link of the file itself
	SealEntries = 4 // a directory: entries created, removed or renamed in it
)

// Seal makes files (path -> Seal* flags) the agent's own: with
// Options.Protect the programs refuse what the flags say to every other
// process. It replaces what an earlier Seal sealed; a path that does not
// exist is left out.
func (b *Backend) Seal(files map[string]uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil // closed
	}
	m := b.shared["guard"]
	sealed := b.shared["sealed"]
	want := map[lsmFkey]uint32{}
	for p, f := range files {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		k := lsmFkey{Dev: KernelDev(st.Dev), Ino: st.Ino}
		want[k] |= f
	}
	for k, f := range want {
		if err := sealed.Put(&k, f); err != nil {
			return fmt.Errorf("bpf: seal the agent's files: %w", err)
		}
	}
	var k lsmFkey
	var v uint32
	var stale []lsmFkey
	it := sealed.Iterate()
	for it.Next(&k, &v) {
		if _, ok := want[k]; !ok {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		_ = sealed.Delete(&k)
	}
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: read the guard map: %w", err)
	}
	if on := len(want) > 0; on != (g.Flags&guardSealed != 0) {
		g.Flags ^= guardSealed
		if err := m.Put(uint32(0), &g); err != nil {
			return fmt.Errorf("bpf: write the guard map: %w", err)
		}
	}
	return nil
}

// AwaitSuccessor makes the file that is next renamed or hard-linked to
// path (a package manager installing the new executable) the executable
// trusted to take the pinned programs over.
func (b *Backend) AwaitSuccessor(path string) error {
	return awaitSuccessor(b.shared["guard"], path)
}

func awaitSuccessor(m *ebpf.Map, path string) error {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Dir(path), &st); err != nil {
		return fmt.Errorf("bpf: the new executable's directory: %w", err)
	}
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: read the guard map: %w", err)
	}
	g.SuccDev, g.SuccDir, g.SuccHash = KernelDev(st.Dev), st.Ino, nameHash(filepath.Base(path))
	g.Flags |= guardSucc
	if err := m.Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the guard map: %w", err)
	}
	return nil
}

// AwaitSuccessorPinned is AwaitSuccessor for pinned programs whose agent
// is not running, done by the agent's executable itself (only it may open
// the pinned guard map). Refused when the agent was configured with admin
// keys: then only a signed request to a running agent may.
func AwaitSuccessorPinned(dir, path string) error {
	m, err := openIdleGuard(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	return awaitSuccessor(m, path)
}

// openIdleGuard opens the pinned guard map at dir for the agent's
// executable acting itself: refused while an agent runs (ask it), and when
// the agent was configured with admin keys (only a signed request to a
// running agent may then).
func openIdleGuard(dir string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "map_guard"), nil)
	if err != nil {
		return nil, fmt.Errorf("bpf: open the pinned guard map (only the agent's executable may): %w", err)
	}
	var g lsmGuardState
	err = m.Lookup(uint32(0), &g)
	switch {
	case err != nil:
		err = fmt.Errorf("bpf: read the pinned guard map: %w", err)
	case alive0(g):
		err = fmt.Errorf("bpf: %w (pid %d): ask it", ErrAgentRunning, g.AgentTgid)
	case g.Flags&guardKeyed != 0:
		err = errors.New("bpf: the pinned programs' agent requires signed administration; start it and ask it with --key")
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// ClaimPinned makes this process the agent the pinned programs at dir
// guard and exempt, before it takes them over: so that it may open its
// own files (the audit log), which they keep from every other process.
// Refused while another agent runs.
func ClaimPinned(dir string) error {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "map_guard"), nil)
	if err != nil {
		return fmt.Errorf("bpf: take over the pinned programs at %s: open the guard map: %w "+
			"(only the running agent, or the agent's executable running untraced, may)", dir, err)
	}
	defer m.Close()
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: read the pinned guard map: %w", err)
	}
	if alive0(g) && int(g.AgentTgid) != os.Getpid() {
		return fmt.Errorf("bpf: %w at %s (pid %d): stop it first (drmfilter stop)", ErrAgentRunning, dir, g.AgentTgid)
	}
	start, err := startTicks(os.Getpid())
	if err != nil {
		return fmt.Errorf("bpf: the agent's start time: %w", err)
	}
	g.AgentTgid, g.AgentStart = uint32(os.Getpid()), start
	if err := m.Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the pinned guard map: %w", err)
	}
	return nil
}

// UnloadPinned removes the pinned programs at dir when no agent runs, as
// the agent's executable itself (only it may). Refused when the agent was
// configured with admin keys: then only a signed request to a running
// agent may remove them.
func UnloadPinned(dir string) error {
	m, err := openIdleGuard(dir)
	if err != nil {
		return err
	}
	defer m.Close()
	var g lsmGuardState
	if err := m.Lookup(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: read the pinned guard map: %w", err)
	}
	g.Flags &^= guardProtect | guardLockKernel
	if err := m.Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the pinned guard map: %w", err)
	}
	return Unpin(dir)
}

// HandOver makes the process pid the agent the programs guard and exempt,
// and its executable the one trusted to take them over: it is starting to
// (drmfilter's takeOverRunning), and this agent stops.
func (b *Backend) HandOver(pid int) error {
	g, err := guardFor(pid, b.opts)
	if err != nil {
		return err
	}
	m := b.shared["guard"]
	var old lsmGuardState
	if err := m.Lookup(uint32(0), &old); err != nil {
		return fmt.Errorf("bpf: read the guard map: %w", err)
	}
	g.Flags |= old.Flags & guardSealed
	if err := m.Put(uint32(0), &g); err != nil {
		return fmt.Errorf("bpf: write the guard map: %w", err)
	}
	return nil
}
