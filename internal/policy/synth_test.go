package policy

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// synthPolicies writes YAML for about n rules, shaped like a large real
// deployment: many department trees, per-project source trees by
// extension, report globs with wildcards in the middle, a few policies by
// extension alone and one that matches a file type anywhere (the costliest
// shape for the index).
func synthPolicies(n int) string {
	var b strings.Builder
	rules := 0
	for i := 0; rules < n; i++ {
		fmt.Fprintf(&b, "---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: p%05d}\nspec:\n  files:\n", i)
		switch {
		case i == 0:
			b.WriteString("    paths: [\"/**/*.kdbx\"]\n")
		case i%500 == 1:
			fmt.Fprintf(&b, "    extensions: [secret%d]\n", i)
		case i%10 < 6:
			fmt.Fprintf(&b, "    paths: [\"/srv/dept%d/**\"]\n    excludePaths: [\"/srv/dept%d/public/**\"]\n", i, i)
		case i%10 < 8:
			fmt.Fprintf(&b, "    paths: [\"/home/*/projects/proj%d/**\"]\n    extensions: [go, py]\n", i)
		case i%10 < 9:
			fmt.Fprintf(&b, "    paths: [\"/data/%d/*/reports%d/*.pdf\"]\n", i%50, i)
		default:
			fmt.Fprintf(&b, "    paths: [\"/var/lib/app%d/secrets/**\"]\n    filesystems: [ext4, xfs]\n", i)
		}
		b.WriteString("  rules:\n")
		per := min(5, n-rules)
		for j := 0; j < per; j++ {
			switch j {
			case 0:
				fmt.Fprintf(&b, "    - {name: app, operations: [open, read], subjects: {executables: [/usr/bin/app%d, /opt/app%d/bin/*]}, effect: allow}\n", i, i)
			case 1:
				fmt.Fprintf(&b, "    - {name: svc, operations: [open], subjects: {users: [\"%d\"], container: none}, effect: allow}\n", 1000+i%100)
			case 2:
				b.WriteString("    - {name: pods, operations: [open], subjects: {kubernetes: {namespaces: [prod], podLabels: {matchLabels: {app: api}}}}, effect: audit}\n")
			case 3:
				b.WriteString("    - {name: no-exec, operations: [exec], effect: deny}\n")
			case 4:
				b.WriteString("    - {name: deny, operations: [open], effect: deny}\n")
			}
		}
		rules += per
	}
	return b.String()
}

// synthCorpus returns n paths like those a busy host opens: mostly system
// files no policy covers, and a share in protected trees.
func synthCorpus(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]string, 0, n)
	for len(out) < n {
		var p string
		switch k := r.IntN(20); {
		case k < 5:
			p = fmt.Sprintf("/usr/lib/x86_64-linux-gnu/lib%s.so.%d", word(r), r.IntN(9))
		case k < 7:
			p = fmt.Sprintf("/usr/share/doc/%s/changelog.Debian.gz", word(r))
		case k < 8:
			p = fmt.Sprintf("/proc/%d/status", r.IntN(40000))
		case k < 9:
			p = fmt.Sprintf("/etc/%s.conf", word(r))
		case k < 10:
			p = fmt.Sprintf("/tmp/tmp.%s/%d", word(r), r.IntN(100))
		case k < 13:
			p = fmt.Sprintf("/home/user%d/projects/proj%d/src/%s.%s", r.IntN(50), r.IntN(3000), word(r), []string{"go", "py", "md", "c"}[r.IntN(4)])
		case k < 16:
			p = fmt.Sprintf("/srv/dept%d/%s/%s.xlsx", r.IntN(3000), []string{"docs", "public", "q3"}[r.IntN(3)], word(r))
		case k < 17:
			p = fmt.Sprintf("/data/%d/%s/reports%d/%s.pdf", r.IntN(50), word(r), r.IntN(3000), word(r))
		case k < 18:
			p = fmt.Sprintf("/var/lib/app%d/secrets/%s", r.IntN(3000), word(r))
		case k < 19:
			p = fmt.Sprintf("/home/user%d/vault/%s.kdbx", r.IntN(50), word(r))
		default:
			p = fmt.Sprintf("/var/log/%s/%s.log", word(r), word(r))
		}
		out = append(out, p)
	}
	return out
}

var words = strings.Fields("alpha beta gamma delta kernel crypt ssl z xml2 png jpeg ffi uuid systemd dbus curl git ldap ncurses pam")

func word(r *rand.Rand) string { return words[r.IntN(len(words))] }

func synthMatcher(t testing.TB, rules int) *Matcher {
	t.Helper()
	set, err := Load([]Source{{Name: "synth.yaml", Data: []byte(synthPolicies(rules))}}, LoadOptions{Resolver: testAccounts})
	if err != nil {
		t.Fatalf("synthetic policies: %v", err)
	}
	if got := set.Rules(); got != rules {
		t.Fatalf("generated %d rules, want %d", got, rules)
	}
	return Compile(set, CompileOptions{})
}

func synthInput(r *rand.Rand, path string) *Input {
	in := &Input{
		Op:           []Operation{OpOpen, OpOpen, OpOpen, OpExec, OpRead}[r.IntN(5)],
		Path:         path,
		FSType:       []string{"ext4", "xfs", "tmpfs", "nfs4"}[r.IntN(4)],
		StorageClass: "local",
		Subject:      Subject{Exe: fmt.Sprintf("/usr/bin/app%d", r.IntN(3000)), UID: uint32(1000 + r.IntN(200))},
	}
	if r.IntN(4) == 0 {
		in.Subject.Container = Container{ID: "0123456789abcdef", Runtime: "containerd"}
		in.Subject.Pod = &Pod{Namespace: []string{"prod", "dev"}[r.IntN(2)], Name: "api-0", Labels: map[string]string{"app": "api"}}
	}
	return in
}

// TestExplainAgreesWithDecide checks the slow, explaining path against the
// hot path on many inputs: `policy explain` must show what the agent does.
func TestExplainAgreesWithDecide(t *testing.T) {
	m := synthMatcher(t, 1000)
	r := rand.New(rand.NewPCG(7, 7))
	covered := 0
	for _, p := range synthCorpus(2000, 3) {
		in := synthInput(r, p)
		in2 := *in
		d := m.Decide(in)
		ex := m.Explain(&in2)
		if d != ex.Decision {
			t.Fatalf("%s %s by %s uid %d:\nDecide  %+v\nExplain %+v", in.Op, in.Path, in.Subject.Exe, in.Subject.UID, d, ex.Decision)
		}
		if d.Covered {
			covered++
		}
	}
	if covered < 50 || covered > 1950 {
		t.Fatalf("corpus is not a useful mix: %d of 2000 covered", covered)
	}
}

func BenchmarkDecide(b *testing.B) {
	corpus := synthCorpus(100_000, 1)
	for _, n := range []int{10, 1000, 10000} {
		m := synthMatcher(b, n)
		r := rand.New(rand.NewPCG(1, 2))
		inputs := make([]*Input, len(corpus))
		for i, p := range corpus {
			inputs[i] = synthInput(r, p)
		}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Decide(inputs[i])
				i++
				if i == len(inputs) {
					i = 0
				}
			}
		})
		var uncovered []*Input
		for _, in := range inputs {
			if d := m.Decide(in); !d.Covered {
				uncovered = append(uncovered, in)
			}
		}
		b.Run(fmt.Sprintf("uncovered/rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				m.Decide(uncovered[i])
				i++
				if i == len(uncovered) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkCompile loads and compiles n rules and reports the heap the
// compiled Matcher keeps (with the policy set it references) as MB.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		src := []Source{{Name: "synth.yaml", Data: []byte(synthPolicies(n))}}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var heapMB float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				set, err := Load(src, LoadOptions{Resolver: testAccounts})
				if err != nil {
					b.Fatal(err)
				}
				m := Compile(set, CompileOptions{})
				runtime.GC()
				runtime.ReadMemStats(&after)
				heapMB = float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
				runtime.KeepAlive(m)
			}
			b.ReportMetric(heapMB, "MB")
		})
	}
}

// BenchmarkDecideLatency times every decision of the corpus one by one and
// reports the median and the 99th percentile (each includes about 20-40 ns
// of clock reading).
func BenchmarkDecideLatency(b *testing.B) {
	corpus := synthCorpus(100_000, 1)
	m := synthMatcher(b, 10000)
	r := rand.New(rand.NewPCG(1, 2))
	inputs := make([]*Input, len(corpus))
	for i, p := range corpus {
		inputs[i] = synthInput(r, p)
	}
	lat := make([]time.Duration, len(inputs))
	for b.Loop() {
		for i, in := range inputs {
			t0 := time.Now()
			m.Decide(in)
			lat[i] = time.Since(t0)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
