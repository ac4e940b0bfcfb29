package bpflsm

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// The kernel benchmarks measure, in one guest, what the programs cost an
// open and an exec, and what the kernel's maps and the Plan take for a
// large policy. bench/bpf-guest.sh runs them; they run nowhere else:
// TestInGuestBenchmarks needs DRMFILTER_BPF_BENCH=1 on the host, and
// TestKernelBenchmarks (selected by TestInGuest's ^TestKernel too) skips
// unless the guest has benchMarker, which only TestInGuestBenchmarks puts
// there. They fail on errors only, never on the numbers.

// benchEnv opts the host into booting the benchmark guest.
const benchEnv = "DRMFILTER_BPF_BENCH"

// benchMarker is the guest path of the file that selects the benchmarks:
// its lines are the settings, key=value (benchSettings).
const benchMarker = "/drmfilter-bpf-bench"

// benchSettings are the benchmarks' knobs, from the environment on the
// host (DRMFILTER_BPF_BENCH_<KEY>), carried into the guest in the marker.
type benchSettings struct {
	Rounds    int           // rounds of the timing runs, alternating which phase goes first
	Benchtime time.Duration // per measurement (-test.benchtime)
	Files     int           // per-file entries in the memory plan
	Rules     int           // rules in the memory plan
	SetFiles  int           // files per open benchmark
}

func defaultBenchSettings() benchSettings {
	return benchSettings{Rounds: 5, Benchtime: time.Second, Files: 1_000_000, Rules: 10_000, SetFiles: 1000}
}

func (s *benchSettings) set(key, val string) error {
	var err error
	switch key {
	case "rounds":
		s.Rounds, err = strconv.Atoi(val)
	case "benchtime":
		s.Benchtime, err = time.ParseDuration(val)
	case "files":
		s.Files, err = strconv.Atoi(val)
	case "rules":
		s.Rules, err = strconv.Atoi(val)
	case "setfiles":
		s.SetFiles, err = strconv.Atoi(val)
	default:
		return fmt.Errorf("unknown benchmark setting %q", key)
	}
	if err != nil {
		return fmt.Errorf("benchmark setting %s: %w", key, err)
	}
	return nil
}

func (s benchSettings) marker() string {
	return fmt.Sprintf("rounds=%d\nbenchtime=%v\nfiles=%d\nrules=%d\nsetfiles=%d\n", s.Rounds, s.Benchtime, s.Files, s.Rules, s.SetFiles)
}

// TestInGuestBenchmarks boots a guest that runs TestKernelBenchmarks.
func TestInGuestBenchmarks(t *testing.T) {
	if guest.InGuest() {
		t.Skip("already in the guest")
	}
	if os.Getenv(benchEnv) != "1" {
		t.Skip("skipping: the kernel benchmarks run only with " + benchEnv + "=1 (bench/bpf-guest.sh)")
	}
	testutil.RequireRoot(t)
	s := defaultBenchSettings()
	for _, key := range []string{"rounds", "benchtime", "files", "rules", "setfiles"} {
		if v := os.Getenv(benchEnv + "_" + strings.ToUpper(key)); v != "" {
			if err := s.set(key, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	marker := filepath.Join(t.TempDir(), "bench")
	must(t, os.WriteFile(marker, []byte(s.marker()), 0o644))
	guest.Run(t, guest.Options{
		Run: "^TestKernelBenchmarks$", Verbose: true,
		Extra: map[string]string{marker: benchMarker},
		// The memory plan's maps and Go heap take a few hundred MiB.
		MemoryMiB: 3072, Timeout: 40 * time.Minute,
	})
}

// benchCase is one line of the timing table.
type benchCase struct {
	name   string
	exec   bool // an exec case: its ratio is to the native exec
	loaded bool // measured with the programs attached
	run    func(b *testing.B) error
}

// TestKernelBenchmarks measures, interleaved: open+close natively (no
// programs attached), of uncovered files (on a filesystem the policies do
// not cover, and on one they do) and of covered files allowed (through
// their tree, and through an entry of their own) and denied; an exec of a
// small static program natively, uncovered and covered; then the memory
// of the kernel's maps and of the Plan for a large policy.
func TestKernelBenchmarks(t *testing.T) {
	guest.RequireGuest(t)
	raw, err := os.ReadFile(benchMarker)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("skipping: benchmarks only (bench/bpf-guest.sh)")
	}
	must(t, err)
	s := defaultBenchSettings()
	for line := range strings.Lines(string(raw)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			must(t, s.set(k, v))
		}
	}
	f := flag.Lookup("test.benchtime")
	if f == nil {
		t.Fatal("no -test.benchtime flag")
	}
	old := f.Value.String()
	must(t, f.Value.Set(s.Benchtime.String()))
	t.Cleanup(func() { _ = f.Value.Set(old) })

	report := func(format string, args ...any) { fmt.Printf("BENCH "+format+"\n", args...) }
	report("cpu: %s; %d CPU(s); kernel %s", cpuModel(), runtime.NumCPU(), kernelRelease())
	if strings.Contains(cpuModel(), "TCG") {
		report("qemu TCG (emulation): every instruction is emulated, BPF programs (JIT-compiled or not) included,")
		report("and emulation overstates their cost next to the kernel's own code: read the ratios as upper bounds;")
		report("on hardware (or under KVM) the programs' share of an open is smaller.")
	} else {
		report("not TCG, as far as /proc/cpuinfo says; compare only numbers measured in the same run")
	}

	cases, plan := benchSetup(t, s)
	timing(t, s, cases, plan, report)
	memory(t, s, report)
}

// benchSetup makes the files, the policies and the cases.
func benchSetup(t *testing.T, s benchSettings) ([]benchCase, *Plan) {
	root := filepath.Join(t.TempDir(), "fs")
	other := filepath.Join(t.TempDir(), "other")
	for _, d := range []string{root, other} {
		must(t, os.Mkdir(d, 0o755))
		must(t, unix.Mount("tmpfs", d, "tmpfs", 0, "mode=0755"))
		t.Cleanup(func() { _ = unix.Unmount(d, unix.MNT_DETACH) })
	}
	sets := map[string]string{
		"allow":  root + "/allow",       // covered by its tree, allowed
		"own":    root + "/own",         // covered by an entry of its own, allowed
		"deny":   root + "/deny",        // covered by its tree, denied
		"same":   root + "/free/a/b/c",  // uncovered, four directories below a covered filesystem's root
		"other":  other + "/free",       // uncovered, on a filesystem with no covered file
		"native": root + "/native-copy", // what the native case opens (the same filesystem)
	}
	for _, dir := range sets {
		must(t, os.MkdirAll(dir, 0o755))
		for i := range s.SetFiles {
			must(t, os.WriteFile(fmt.Sprintf("%s/f%05d", dir, i), []byte("x"), 0o644))
		}
	}
	self, err := os.Executable()
	must(t, err)
	busybox, err := lookBusybox()
	must(t, err)
	for _, dir := range []string{sets["allow"], sets["same"]} {
		data, err := os.ReadFile(busybox)
		must(t, err)
		must(t, os.WriteFile(dir+"/busybox", data, 0o755))
	}
	text := fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: bench-allow}
spec:
  files: {paths: ["%[1]s/allow/**", "%[1]s/own/f*"]}
  rules:
    - {name: self-may, subjects: {executables: [%[2]q]}, operations: [open, exec], effect: allow}
    - {name: nobody-else, operations: [open, exec], effect: deny}
---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: bench-deny}
spec:
  files: {paths: ["%[1]s/deny/**"]}
  rules:
    - {name: keeper-may, subjects: {executables: [/nonexistent/keeper]}, operations: [open, exec], effect: allow}
    - {name: nobody-else, operations: [open, exec], effect: deny}
`, root, self)
	plan, err := Build(compile(t, text), BuildOptions{})
	must(t, err)
	if len(plan.Dirs) != 2 || len(plan.Files) < s.SetFiles {
		t.Fatalf("plan: %d trees, %d files of their own: want 2 trees (allow, deny) and the %d own/ files", len(plan.Dirs), len(plan.Files), s.SetFiles)
	}

	// The directories are opened now, with no programs attached: the
	// policies cover the denied directory itself too.
	dfds := map[string]int{}
	for set, dir := range sets {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		must(t, err)
		t.Cleanup(func() { unix.Close(fd) })
		dfds[set] = fd
	}
	open := func(set string, want error) func(b *testing.B) error {
		return func(b *testing.B) error { return openLoop(b, dfds[set], sets[set], s.SetFiles, want) }
	}
	exe := func(path string) func(b *testing.B) error {
		return func(b *testing.B) error { return execLoop(b, path) }
	}
	return []benchCase{
		{name: "open+close, no programs (native)", run: open("native", nil)},
		{name: "open+close, uncovered, other filesystem", loaded: true, run: open("other", nil)},
		{name: "open+close, uncovered, covered filesystem (depth 4)", loaded: true, run: open("same", nil)},
		{name: "open+close, covered by tree, allowed", loaded: true, run: open("allow", nil)},
		{name: "open+close, covered by own entry, allowed", loaded: true, run: open("own", nil)},
		{name: "open, covered by tree, denied (EPERM, event)", loaded: true, run: open("deny", unix.EPERM)},
		{name: "exec static busybox true, no programs (native)", exec: true, run: exe(sets["same"] + "/busybox")},
		{name: "exec static busybox true, uncovered", exec: true, loaded: true, run: exe(sets["same"] + "/busybox")},
		{name: "exec static busybox true, covered, allowed", exec: true, loaded: true, run: exe(sets["allow"] + "/busybox")},
	}, plan
}

// lookBusybox finds the static busybox the guest is built with.
func lookBusybox() (string, error) {
	for _, p := range []string{"/usr/bin/busybox", "/bin/busybox", "/usr/sbin/busybox", "/sbin/busybox"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("no busybox in the guest")
}

// openLoop opens (openat in the directory dfd, so that every case walks
// one path component) and closes the directory's files in turn; want is
// the error every open must give.
func openLoop(b *testing.B, dfd int, dir string, n int, want error) error {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("f%05d", i)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fd, err := unix.Openat(dfd, names[i%n], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		if !errors.Is(err, want) {
			return fmt.Errorf("open %s/%s: %v, want %v", dir, names[i%n], err, want)
		}
	}
	return nil
}

// execLoop runs path as "true" (a busybox applet) and waits for it.
func execLoop(b *testing.B, path string) error {
	argv := []string{"true"}
	for i := 0; i < b.N; i++ {
		// No descriptors for the child: os/exec would open /dev/null
		// for its standard streams, opens that would count here.
		pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{})
		if err != nil {
			return fmt.Errorf("exec %s: %w", path, err)
		}
		var ws syscall.WaitStatus
		for {
			_, err = syscall.Wait4(pid, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("wait for %s: %w", path, err)
		}
		if !ws.Exited() || ws.ExitStatus() != 0 {
			return fmt.Errorf("%s true: %v", path, ws)
		}
	}
	return nil
}

// timing runs the cases in rounds: in each, the native cases with no
// programs attached and the others with them, the two phases in
// alternating order, and each ratio is taken within its round.
func timing(t *testing.T, s benchSettings, cases []benchCase, plan *Plan, report func(string, ...any)) {
	ns := make([][]float64, len(cases)) // [case][round]
	var events, loadTimes []float64
	var lost uint64
	// Round 0 warms up and is not counted: TCG translates the guest's
	// code on its first run, which would go to whichever phase came first.
	for r := range s.Rounds + 1 {
		phases := []bool{false, true}
		if r%2 == 0 {
			phases = []bool{true, false}
		}
		warmup := r == 0
		for _, loaded := range phases {
			var b *Backend
			var loadTime float64
			drained := make(chan int)
			if loaded {
				start := time.Now()
				var err error
				// The agent is the guest's PID 1, which does nothing meanwhile:
				// the benchmarks' opens and execs are decided.
				b, err = Load(plan, Options{AgentPID: 1})
				must(t, err)
				loadTime = time.Since(start).Seconds()
				go func() {
					n := 0
					for {
						if _, err := b.ReadEvent(time.Time{}); err != nil {
							drained <- n
							return
						}
						n++
					}
				}()
			}
			for i, c := range cases {
				if c.loaded != loaded {
					continue
				}
				var runErr error
				res := testing.Benchmark(func(b *testing.B) {
					if err := c.run(b); err != nil && runErr == nil {
						runErr = err
					}
				})
				if runErr != nil {
					t.Fatalf("%s: %v", c.name, runErr)
				}
				if res.N == 0 {
					t.Fatalf("%s: no iterations", c.name)
				}
				t.Logf("round %d: %s: %d in %v", r, c.name, res.N, res.T)
				if !warmup {
					ns[i] = append(ns[i], float64(res.T.Nanoseconds())/float64(res.N))
				}
			}
			if b != nil {
				cnt, err := b.Counters()
				must(t, err)
				must(t, b.Close())
				n := <-drained
				t.Logf("round %d: counters %+v, %d events read", r, cnt, n)
				if !warmup {
					events = append(events, float64(n))
					loadTimes = append(loadTimes, loadTime)
					lost += cnt.Lost
				}
			}
		}
	}

	report("")
	report("open+close and exec, %d rounds of %v each after a warm-up round, interleaved (the phase with the programs first in every other round);", s.Rounds, s.Benchtime)
	report("ratio: ops/s over the native ops/s of the same round, median (min-max) over the rounds")
	report("")
	report("| %-54s | %10s | %10s | %-17s |", "case", "ns/op", "ops/s", "ratio to native")
	report("|%s|%s|%s|%s|", strings.Repeat("-", 56), strings.Repeat("-", 12), strings.Repeat("-", 12), strings.Repeat("-", 19))
	nativeOf := func(exec bool) int {
		return slices.IndexFunc(cases, func(c benchCase) bool { return !c.loaded && c.exec == exec })
	}
	for i, c := range cases {
		nat := ns[nativeOf(c.exec)]
		ratios := make([]float64, len(ns[i]))
		for r := range ns[i] {
			ratios[r] = nat[r] / ns[i][r]
		}
		med := median(ns[i])
		report("| %-54s | %10.0f | %10.0f | %5.2f (%4.2f-%4.2f) |", c.name, med, 1e9/med, median(ratios), slices.Min(ratios), slices.Max(ratios))
	}
	report("")
	report("program load and map fill (%d rules, %d classes, %d files of their own, %d trees): median %.2f s", len(plan.Rules), len(plan.Classes), len(plan.Files), len(plan.Dirs), median(loadTimes))
	report("denial events read from the ring buffer per round: median %.0f; lost (no room in the ring buffer): %d in all", median(events), lost)
}

// memory loads a plan of s.Files files with entries of their own and
// s.Rules rules, and reports what the kernel's maps take (the memlock
// the kernel accounts them, from /proc/self/fdinfo) and the Plan's Go heap.
func memory(t *testing.T, s benchSettings, report func(string, ...any)) {
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	h0 := heap()
	plan := synthPlan(s.Files, s.Rules)
	h1 := heap()
	plan.Paths = make(map[FileKey]string, len(plan.Files))
	for k := range plan.Files {
		plan.Paths[k] = fmt.Sprintf("/srv/bench/p%05d/dir%03d/file%07d.dat", k.Ino%uint64(max(1, s.Rules/2)), k.Ino%1000, k.Ino)
	}
	h2 := heap()
	free0 := memAvailable()
	start := time.Now()
	b, err := Load(plan, Options{AgentPID: 1})
	must(t, err)
	loaded := time.Since(start)
	free1 := memAvailable()
	defer b.Close()

	report("")
	report("memory: a plan of %d files with entries of their own, %d rules (%d policies of 2), %d classes, %d subjects", len(plan.Files), len(plan.Rules), len(plan.Rules)/2, len(plan.Classes), len(plan.Subjects))
	report("load and fill: %v", loaded.Round(time.Millisecond))
	report("")
	report("| %-10s | %-20s | %11s | %11s | %12s |", "map", "type", "max entries", "entries", "memlock")
	report("|%s|%s|%s|%s|%s|", strings.Repeat("-", 12), strings.Repeat("-", 22), strings.Repeat("-", 13), strings.Repeat("-", 13), strings.Repeat("-", 14))
	var total uint64
	v := reflect.ValueOf(&b.cur.objs.lsmMaps).Elem()
	for i := range v.NumField() {
		m, ok := v.Field(i).Interface().(*ebpf.Map)
		if !ok || m == nil {
			continue
		}
		fi, err := fdinfo(m.FD())
		must(t, err)
		mem, _ := strconv.ParseUint(fi["memlock"], 10, 64)
		total += mem
		entries := "-"
		switch v.Type().Field(i).Tag.Get("ebpf") {
		case "files":
			entries = strconv.Itoa(len(plan.Files))
		case "rules":
			entries = strconv.Itoa(len(plan.Rules))
		case "classes":
			entries = strconv.Itoa(len(plan.Classes))
		case "rule_subj":
			entries = strconv.Itoa(len(plan.Subjects))
		}
		report("| %-10s | %-20s | %11s | %11s | %12s |", v.Type().Field(i).Tag.Get("ebpf"), m.Type(), fi["max_entries"], entries, mib(mem))
	}
	report("| %-10s | %-20s | %11s | %11s | %12s |", "total", "", "", "", mib(total))
	report("")
	report("MemAvailable fell by %s over the load (the maps, the programs, and the load's transient buffers)", mib(free0-min(free0, free1)))
	report("Go heap of the Plan: %s without Paths, %s with Paths (the audit records' names; %s for them)", mib(h1-h0), mib(h2-h0), mib(h2-h1))
	runtime.KeepAlive(plan)
}

// synthPlan is a plan of files with entries of their own, in classes of
// two rules each (an executable allowed, everyone else denied), as a
// policy per class gives.
func synthPlan(files, rules int) *Plan {
	p := &Plan{Files: make(map[FileKey]uint32, files), Dirs: map[FileKey]uint32{}, Paths: map[FileKey]string{}, Ops: kopOpen | kopExec}
	const dev = 0xfff<<20 | 0xabc // no such device: nothing real is covered
	classes := max(1, rules/2)
	for c := range classes {
		allow, deny := uint32(len(p.Rules)), uint32(len(p.Rules)+1)
		p.Rules = append(p.Rules,
			Rule{Ops: kopOpen | kopExec, Effect: keffAllow, Flags: kruleExe, Policy: fmt.Sprintf("p%05d", c), Name: "keeper-may"},
			Rule{Ops: kopOpen | kopExec, Effect: keffDeny, Policy: fmt.Sprintf("p%05d", c), Name: "nobody-else"})
		p.Classes = append(p.Classes, Class{Rules: []uint32{allow, deny}, Enforce: 2, Example: fmt.Sprintf("/srv/bench/p%05d/x", c)})
		p.Subjects = append(p.Subjects, SubjectKey{Rule: allow, Kind: ksubjExe, Dev: dev, Val: uint64(1<<40 + c)})
	}
	for i := range files {
		p.Files[FileKey{Dev: dev, Ino: uint64(i + 1)}] = uint32(i % classes)
	}
	return p
}

// fdinfo reads /proc/self/fdinfo/FD's key: value lines.
func fdinfo(fd int) (map[string]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, sc.Err()
}

// memAvailable is /proc/meminfo's MemAvailable, in bytes.
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
