package bpflsm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// loopEnv, when set, makes the test binary a looping subject: it reads
// a file over and over until a stop file exists, and reports how often
// the outcome was not the one wanted. Its value is
// "want\tfile\tstopfile\tlimit" (want: ok or EPERM; limit: a duration
// after which it stops anyway).
const loopEnv = "DRMFILTER_BPF_LOOP"

func init() {
	if v, ok := os.LookupEnv(loopEnv); ok {
		os.Exit(loopSubject(v))
	}
}

// loopSubject runs the loop and prints "ready" after its first round,
// then, when it stops, "done <rounds> <wrong> <outcomes>".
func loopSubject(spec string) int {
	f := strings.Split(spec, "\t")
	if len(f) != 4 {
		fmt.Fprintf(os.Stderr, "%s: want 4 fields, got %q\n", loopEnv, spec)
		return 2
	}
	want, file, stop := f[0], f[1], f[2]
	limit, err := time.ParseDuration(f[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	// Leave most of the (single, emulated) CPU to the reloads; the loop
	// still runs all through them.
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, 19)
	deadline := time.Now().Add(limit)
	rounds, wrong := 0, 0
	seen := map[string]int{}
	for {
		got := outcome(doOp("read", []string{file}))
		rounds++
		seen[got]++
		if got != want {
			wrong++
		}
		if rounds == 1 {
			fmt.Println("ready")
		}
		if _, err := os.Stat(stop); err == nil || time.Now().After(deadline) {
			break
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.ReplaceAll(k, " ", "_"), seen[k]))
	}
	fmt.Printf("done %d %d %s\n", rounds, wrong, strings.Join(parts, ","))
	return 0
}

// reloadSet writes a policy set of 1,000 policies of 10 rules each, one
// per directory below dirs, plus the policies of the protected directory.
// Both variants deny plain every open of the protected files and allow
// keeper to open and read them, by different rules (other names, so
// other rule numbers; other effects; an audit-mode policy in one).
func reloadSet(variant int, dirs, prot, plainExe, keeperExe string) string {
	var b strings.Builder
	// Ten different pairs of operations: no rule's operations are a subset
	// of another's in its policy.
	names := policy.OperationNames()
	pairs := [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 0}, {0, 2}}
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "---\napiVersion: drmfilter.dev/v1\nkind: ProtectionPolicy\nmetadata: {name: v%d-d%04d}\nspec:\n  files: {paths: [%q]}\n  rules:\n",
			variant, i, filepath.Join(dirs, fmt.Sprintf("%04d", i))+"/**")
		for j := 0; j < 10; j++ {
			effect := []string{"allow", "deny"}[(i+j+variant)%2]
			pr := pairs[(j+3*variant)%len(pairs)]
			op := names[pr[0]] + ", " + names[pr[1]]
			if j == 9 && i < 16 {
				// Some rules by executable (the programs follow at most
				// 16 rules per executable path).
				exe := []string{plainExe, keeperExe}[(i+variant)%2]
				fmt.Fprintf(&b, "    - {name: r%d, operations: [%s], effect: %s, subjects: {executables: [%q]}}\n", j, op, effect, exe)
				continue
			}
			fmt.Fprintf(&b, "    - {name: r%d, operations: [%s], effect: %s, subjects: {users: [\"%d\"]}}\n", j, op, effect, 10000+20000*variant+10*i+j)
		}
	}
	protGlob := prot + "/**"
	if variant == 0 {
		fmt.Fprintf(&b, `---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: prot}
spec:
  files: {paths: [%q]}
  rules:
    - {name: keeper-may, operations: [open, read], effect: allow, subjects: {executables: [%q]}}
    - {name: nobody-else, operations: [open, read, write, delete, rename], effect: deny}
`, protGlob, keeperExe)
	} else {
		fmt.Fprintf(&b, `---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: aaa-prot}
spec:
  files: {paths: [%q, %q]}
  rules:
    - {name: plain-may-not, operations: [open, write], effect: deny, subjects: {executables: [%q]}}
    - {name: everyone-audited, operations: [open, read], effect: audit}
---
apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: zzz-prot-audit}
spec:
  mode: audit
  files: {paths: [%q]}
  rules:
    - {name: would-deny-all, operations: [open, read], effect: deny}
`, protGlob, prot+"/*", plainExe, protGlob)
	}
	return b.String()
}

// While two subjects loop on a protected file, the policy is replaced
// again and again by one of two 10,000-rule sets that decide the same for
// them: no decision is ever the wrong one.
func TestKernelReloadNeverDecidesWrong(t *testing.T) {
	guest.RequireGuest(t)
	plain, keeper := subjects(t)
	root := filepath.Join(t.TempDir(), "tmpfs")
	must(t, os.Mkdir(root, 0o755))
	must(t, unix.Mount("tmpfs", root, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	testutil.OpenToAll(t, root)
	prot, dirs := filepath.Join(root, "prot"), filepath.Join(root, "d")
	secret := filepath.Join(prot, "secret")
	write(t, secret, "secret")
	for i := 0; i < 1000; i++ {
		write(t, filepath.Join(dirs, fmt.Sprintf("%04d", i), "f"), "f")
	}

	// Two sets, each checked against Decide for the two subjects.
	var plans [2]*Plan
	for v := range plans {
		text := reloadSet(v, dirs, prot, plain.exe, keeper.exe)
		t0 := time.Now()
		m := compile(t, text)
		t1 := time.Now()
		plan, err := Build(m, BuildOptions{})
		must(t, err)
		t.Logf("set %d: %d rules in %d policies; compiled in %v, built in %v: %d rules, %d classes, %d trees, %d files, %d subject keys",
			v, m.Set().Rules(), len(m.Set().Policies), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond),
			len(plan.Rules), len(plan.Classes), len(plan.Dirs), len(plan.Files), len(plan.Subjects))
		if len(plan.Rules) < 10000 {
			t.Fatalf("set %d: %d rules in the plan, want at least 10,000", v, len(plan.Rules))
		}
		for _, c := range []struct {
			exe  string
			want policy.Verdict
		}{{plain.exe, policy.Deny}, {keeper.exe, policy.Allow}} {
			for _, op := range []policy.Operation{policy.OpOpen, policy.OpRead} {
				d := m.Decide(&policy.Input{Op: op, Path: secret, Subject: policy.Subject{Exe: c.exe}})
				if op == policy.OpRead && c.want == policy.Deny {
					continue // the open is denied first
				}
				if d.Verdict != c.want {
					t.Fatalf("set %d: Decide gives %s %s by %s: %s, want %s", v, op, secret, c.exe, d.Verdict, c.want)
				}
			}
		}
		plans[v] = plan
	}

	t0 := time.Now()
	b, err := Load(plans[0], Options{})
	must(t, err)
	t.Cleanup(func() { _ = b.Close() })
	t.Logf("loaded set 0 in %v", time.Since(t0).Round(time.Millisecond))

	// The events, read all along so that the ring buffer keeps room:
	// every deny must be plain's.
	plainID, keeperID := exeKey(t, plain.exe), exeKey(t, keeper.exe)
	evDone := make(chan struct{})
	stopEv := make(chan struct{})
	var evDenied, evAudit, evWrong int
	var evErr error
	go func() {
		defer close(evDone)
		for {
			select {
			case <-stopEv:
				return
			default:
			}
			ev, err := b.ReadEvent(time.Now().Add(100 * time.Millisecond))
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if err != nil {
				evErr = err
				return
			}
			exe := FileKey{Dev: ev.ExeDev, Ino: ev.ExeIno}
			switch {
			case ev.Denied:
				evDenied++
				if exe != plainID {
					evWrong++
				}
			default:
				evAudit++
				if exe != keeperID {
					evWrong++
				}
			}
		}
	}()
	stopEvents := func() {
		select {
		case <-stopEv:
		default:
			close(stopEv)
		}
		select {
		case <-evDone:
		case <-time.After(time.Minute):
			t.Error("the event reader did not stop")
		}
	}
	t.Cleanup(stopEvents)

	stop := filepath.Join(t.TempDir(), "stop")
	type child struct {
		name  string
		cmd   *exec.Cmd
		lines chan string
		errb  *strings.Builder
	}
	var children []*child
	for _, c := range []struct {
		name string
		s    subject
		want string
	}{{"plain", plain, "EPERM"}, {"keeper", keeper, "ok"}} {
		cmd := exec.Command(c.s.exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), loopEnv+"="+strings.Join([]string{c.want, secret, stop, "10m"}, "\t"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		must(t, err)
		ch := &child{name: c.name, cmd: cmd, lines: make(chan string, 4), errb: &strings.Builder{}}
		cmd.Stderr = ch.errb
		must(t, cmd.Start())
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				ch.lines <- sc.Text()
			}
			_, _ = io.Copy(io.Discard, out)
			close(ch.lines)
		}()
		children = append(children, ch)
	}
	// Every child is stopped and waited for, whatever happens.
	var waited bool
	waitAll := func() []string {
		waited = true
		if f, err := os.Create(stop); err == nil {
			_ = f.Close()
		}
		res := make([]string, len(children))
		for i, ch := range children {
			timer := time.AfterFunc(2*time.Minute, func() { _ = ch.cmd.Process.Kill() })
			for l := range ch.lines {
				res[i] = l
			}
			err := ch.cmd.Wait()
			if !timer.Stop() {
				t.Errorf("%s: did not stop within 2 minutes; killed", ch.name)
			}
			if err != nil {
				t.Errorf("%s: %v\n%s", ch.name, err, ch.errb.String())
			}
		}
		return res
	}
	t.Cleanup(func() {
		if !waited {
			waitAll()
		}
	})
	for _, ch := range children {
		select {
		case l := <-ch.lines:
			if l != "ready" {
				t.Fatalf("%s: %q, want ready\n%s", ch.name, l, ch.errb.String())
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: not ready within 2 minutes\n%s", ch.name, ch.errb.String())
		}
	}

	const reloads = 20
	var took []time.Duration
	for i := 0; i < reloads; i++ {
		v := (i + 1) % 2
		t0 := time.Now()
		if err := b.Replace(plans[v]); err != nil {
			t.Fatalf("reload %d (set %d): %v", i, v, err)
		}
		took = append(took, time.Since(t0))
	}
	gen := b.Generation()
	res := waitAll()
	stopEvents()
	if evErr != nil {
		t.Errorf("reading events: %v", evErr)
	}

	for i, ch := range children {
		f := strings.Fields(res[i])
		if len(f) != 4 || f[0] != "done" {
			t.Errorf("%s: last line %q, want done <rounds> <wrong> <outcomes>", ch.name, res[i])
			continue
		}
		rounds, _ := strconv.Atoi(f[1])
		wrong, _ := strconv.Atoi(f[2])
		t.Logf("%s: %d rounds during the reloads, %d wrong (%s)", ch.name, rounds, wrong, f[3])
		if wrong != 0 {
			t.Errorf("%s: %d of %d rounds decided wrong (%s)", ch.name, wrong, rounds, f[3])
		}
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	c, err := b.Counters()
	must(t, err)
	t.Logf("%d reloads of about 10,000 rules (generation %d): replace min %v, median %v, max %v, mean %v; events: %d denies, %d audits, %d wrong; counters %+v",
		reloads, gen, took[0].Round(time.Millisecond), took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
		(sum / time.Duration(len(took))).Round(time.Millisecond), evDenied, evAudit, evWrong, c)
	if evWrong != 0 {
		t.Errorf("%d events name the wrong subject (a deny not of plain, an audit not of keeper)", evWrong)
	}
}

// exeKey is an executable's identity as the kernel reports it.
func exeKey(t *testing.T, path string) FileKey {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(path, &st))
	return FileKey{Dev: KernelDev(st.Dev), Ino: st.Ino}
}
