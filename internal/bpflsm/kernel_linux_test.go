package bpflsm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/policy"
	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// The kernel tests (TestKernel*) need a kernel that runs BPF LSM programs:
// on the host TestInGuest boots one in qemu and runs them there.

// actEnv, when set, makes the test binary perform the operations listed
// in it (one per line) and report each outcome on standard output: it is
// the subject whose operations the programs decide.
const actEnv = "DRMFILTER_BPF_ACT"

func TestMain(m *testing.M) {
	if acts, ok := os.LookupEnv(actEnv); ok {
		os.Exit(act(acts))
	}
	if path, ok := os.LookupEnv(holdEnv); ok {
		os.Exit(hold(path))
	}
	guest.Main(m)
}

func TestInGuest(t *testing.T) {
	if guest.InGuest() {
		t.Skip("already in the guest")
	}
	testutil.RequireRoot(t)
	guest.Run(t, guest.Options{Run: "^TestKernel", Verbose: testing.Verbose(), Programs: []string{"mkfs.ext4"}, Modules: []string{"overlay"}, Timeout: 25 * time.Minute})
}

// act performs the operations and prints "ok", "EPERM" or the error for
// each, one per line.
func act(acts string) int {
	for _, line := range strings.Split(strings.TrimSpace(acts), "\n") {
		f := strings.Fields(line)
		fmt.Println(outcome(doOp(f[0], f[1:])))
	}
	return 0
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, unix.EPERM):
		return "EPERM" // what the programs answer
	case errors.Is(err, unix.EACCES):
		return "EACCES" // file permissions, not the programs
	}
	return "error: " + err.Error()
}

func doOp(op string, a []string) error {
	switch op {
	case "read":
		f, err := os.Open(a[0])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.ReadAll(f)
		return err
	case "write":
		f, err := os.OpenFile(a[0], os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	case "otrunc":
		f, err := os.OpenFile(a[0], os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		return f.Close()
	case "unlink":
		return unix.Unlink(a[0])
	case "rmdir":
		return unix.Rmdir(a[0])
	case "rename":
		return unix.Rename(a[0], a[1])
	case "link":
		return unix.Link(a[0], a[1])
	case "truncate":
		return unix.Truncate(a[0], 0)
	case "chmod":
		return unix.Chmod(a[0], 0o600)
	case "chown":
		return unix.Chown(a[0], 0, 0)
	case "utimes":
		return unix.UtimesNano(a[0], []unix.Timespec{{Sec: 1}, {Sec: 1}})
	case "setxattr":
		return unix.Setxattr(a[0], "trusted.drmfilter", []byte("x"), 0)
	case "removexattr":
		return unix.Removexattr(a[0], "trusted.drmfilter")
	case "exec":
		return exec.Command(a[0]).Run()
	case "handle":
		// open_by_handle_at: reach the file without any name.
		h, mnt, err := unix.NameToHandleAt(unix.AT_FDCWD, a[0], 0)
		if err != nil {
			return err
		}
		mfd, err := unix.Open(filepath.Dir(a[0]), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		defer unix.Close(mfd)
		_ = mnt
		fd, err := unix.OpenByHandleAt(mfd, h, unix.O_RDONLY)
		if err != nil {
			return err
		}
		return unix.Close(fd)
	}
	return fmt.Errorf("unknown operation %q", op)
}

// subject is a process identity the tests run operations as.
type subject struct {
	exe string
	uid uint32
}

// as runs the operations as the subject and returns their outcomes.
func (s subject) as(t *testing.T, ops ...string) []string {
	t.Helper()
	cmd := exec.Command(s.exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), actEnv+"="+strings.Join(ops, "\n"))
	if s.uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.uid, Gid: s.uid}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", s.exe, s.uid, err, errb.String())
	}
	var res []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		res = append(res, sc.Text())
	}
	if len(res) != len(ops) {
		t.Fatalf("%d outcomes for %d operations: %q\n%s", len(res), len(ops), res, errb.String())
	}
	return res
}

// subjects are the test binary itself (the plain one) and a copy of it
// (another file: another identity, whatever its content).
func subjects(t *testing.T) (plain, keeper subject) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testutil.OpenToAll(t, dir)
	dst := filepath.Join(dir, "keeper")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return subject{exe: self}, subject{exe: dst}
}

// load compiles the policy text, builds its plan and loads the programs.
func load(t *testing.T, text string) (*Backend, *policy.Matcher) {
	t.Helper()
	m := compile(t, text)
	plan, err := Build(m, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(plan, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %d rules %+v, classes %+v, subjects %+v, %d files, %d trees", len(plan.Rules), plan.Rules, plan.Classes, plan.Subjects, len(plan.Files), len(plan.Dirs))
	t.Cleanup(func() { _ = b.Close() })
	return b, m
}

func compile(t *testing.T, text string) *policy.Matcher {
	t.Helper()
	set, err := policy.Load([]policy.Source{{Name: "policy.yaml", Data: []byte(text)}}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := Unsupported(set); len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	return policy.Compile(set, policy.CompileOptions{})
}

// filesystems gives each test a tmpfs and a loop-mounted ext4.
func filesystems(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	tm := filepath.Join(t.TempDir(), "tmpfs")
	must(t, os.Mkdir(tm, 0o755))
	must(t, unix.Mount("tmpfs", tm, "tmpfs", 0, "mode=0755"))
	t.Cleanup(func() { _ = unix.Unmount(tm, unix.MNT_DETACH) })
	testutil.OpenToAll(t, tm)
	out["tmpfs"] = tm

	dir := t.TempDir()
	img := filepath.Join(dir, "ext4.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 32<<20))
	if b, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, b)
	}
	ext := filepath.Join(dir, "ext4")
	must(t, os.Mkdir(ext, 0o755))
	if b, err := exec.Command("mount", "-t", "ext4", "-o", "loop", img, ext).CombinedOutput(); err != nil {
		t.Fatalf("mount ext4: %v\n%s", err, b)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-d", ext).Run() })
	testutil.OpenToAll(t, ext)
	out["ext4"] = ext
	return out
}

func emptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range ents {
		must(t, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

const everyOp = "[open, write, read, exec, delete, rename, link, truncate, setattr]"

func keeperPolicy(dir, keeper string) string {
	return fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: guard}
spec:
  files: {paths: ["%s/prot/**"]}
  rules:
    - name: keeper-may
      subjects: {executables: [%q]}
      operations: %s
      effect: allow
    - name: nobody-else
      operations: %s
      effect: deny
`, dir, keeper, everyOp, everyOp)
}

// Every operation that destroys or replaces a protected file is denied to
// a process the policy does not allow, and allowed to the one it does, on
// tmpfs and on ext4. On the fanotify backend each of these succeeds
// (TestFanotifyCannotStopDestruction in internal/agent).
func TestKernelDestroyingOperations(t *testing.T) {
	guest.RequireGuest(t)
	plain, keeper := subjects(t)
	for fsName, root := range filesystems(t) {
		t.Run(fsName, func(t *testing.T) {
			prot, out := filepath.Join(root, "prot"), filepath.Join(root, "out")
			must(t, os.MkdirAll(prot, 0o755))
			must(t, os.MkdirAll(out, 0o755))
			_, _ = load(t, keeperPolicy(root, keeper.exe))
			for _, c := range []struct {
				op    string
				setup func() // make the files the operation needs (the test process is exempt: it is the agent)
				args  []string
			}{
				{"read", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"write", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"otrunc", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"unlink", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"rmdir", func() { must(t, os.MkdirAll(prot+"/d", 0o755)) }, []string{prot + "/d"}},
				{"rename", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f", out + "/moved"}},
				{"rename", func() { write(t, prot+"/f", "secret"); write(t, out+"/evil", "evil") }, []string{out + "/evil", prot + "/f"}},
				{"rename", func() { write(t, prot+"/d2/f", "secret") }, []string{prot + "/d2", out + "/d2"}},
				{"link", func() { write(t, prot+"/f", "secret"); _ = os.Remove(out + "/l") }, []string{prot + "/f", out + "/l"}},
				{"truncate", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"chmod", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"chown", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"utimes", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"setxattr", func() { write(t, prot+"/f", "secret") }, []string{prot + "/f"}},
				{"removexattr", func() {
					write(t, prot+"/f", "secret")
					must(t, unix.Setxattr(prot+"/f", "trusted.drmfilter", []byte("x"), 0))
				}, []string{prot + "/f"}},
			} {
				line := c.op + " " + strings.Join(c.args, " ")
				c.setup()
				if got := plain.as(t, line)[0]; got != "EPERM" {
					t.Errorf("%s by %s: %s, want EPERM", line, plain.exe, got)
				}
				c.setup()
				if got := keeper.as(t, line)[0]; got != "ok" {
					t.Errorf("%s by %s: %s, want ok", line, keeper.exe, got)
				}
				emptyDir(t, prot) // not the directory itself: the policy covers what is below it
				emptyDir(t, out)
			}
		})
	}
}

// A file is covered through its inode: every way of reaching it without
// its protected name is decided the same.
func TestKernelNoWayAround(t *testing.T) {
	guest.RequireGuest(t)
	plain, keeper := subjects(t)
	root := filesystems(t)["tmpfs"]
	prot, out := filepath.Join(root, "prot"), filepath.Join(root, "out")
	write(t, prot+"/old", "secret")
	must(t, os.MkdirAll(out, 0o755))
	must(t, os.Link(prot+"/old", out+"/old-link")) // a hard link made before the agent
	b, _ := load(t, keeperPolicy(root, keeper.exe))
	_ = b

	write(t, prot+"/new", "secret") // created after the load
	bind := filepath.Join(t.TempDir(), "bind")
	must(t, os.Mkdir(bind, 0o755))
	must(t, unix.Mount(prot, bind, "", unix.MS_BIND, ""))
	t.Cleanup(func() { _ = unix.Unmount(bind, unix.MNT_DETACH) })
	ovl := filepath.Join(t.TempDir(), "ovl")
	for _, d := range []string{"upper", "work", "merged"} {
		must(t, os.MkdirAll(filepath.Join(ovl, d), 0o755))
	}
	must(t, unix.Mount("overlay", ovl+"/merged", "overlay", 0, "lowerdir="+prot+",upperdir="+ovl+"/upper,workdir="+ovl+"/work"))
	t.Cleanup(func() { _ = unix.Unmount(ovl+"/merged", unix.MNT_DETACH) })

	// The keeper moves and links files out of the tree: they stay covered.
	write(t, prot+"/moving", "secret")
	write(t, prot+"/linking", "secret")
	if got := keeper.as(t, "rename "+prot+"/moving "+out+"/moved", "link "+prot+"/linking "+out+"/linked"); got[0] != "ok" || got[1] != "ok" {
		t.Fatalf("keeper's rename and link: %q", got)
	}
	ways := []string{
		"read " + prot + "/old",
		"read " + prot + "/new",
		"read " + out + "/old-link",
		"read " + bind + "/old",
		"read " + ovl + "/merged/old",
		"read /proc/self/root" + prot + "/old",
		"handle " + prot + "/old",
		"read " + out + "/moved",
		"read " + out + "/linked",
	}
	for i, got := range plain.as(t, ways...) {
		if got != "EPERM" {
			t.Errorf("%s: %s, want EPERM", ways[i], got)
		}
	}
	// Files outside the tree are not covered.
	write(t, out+"/free", "free")
	if got := plain.as(t, "read "+out+"/free", "unlink "+out+"/free"); got[0] != "ok" || got[1] != "ok" {
		t.Errorf("an uncovered file: %q, want ok ok", got)
	}
}

// Users and groups decide in the kernel as in user space.
func TestKernelUsersAndGroups(t *testing.T) {
	guest.RequireGuest(t)
	plain, _ := subjects(t)
	root := filesystems(t)["tmpfs"]
	prot := filepath.Join(root, "prot")
	write(t, prot+"/f", "secret")
	must(t, os.Chmod(prot, 0o777))
	must(t, os.Chmod(prot+"/f", 0o666))
	load(t, fmt.Sprintf(`apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: by-user}
spec:
  files: {paths: ["%s/**"]}
  rules:
    - name: alice-may
      subjects: {users: ["1000"]}
      operations: [open, delete]
      effect: allow
    - name: group-2000-may-read
      subjects: {groups: ["2000"]}
      operations: [open]
      effect: allow
    - name: nobody-else
      operations: [open, delete]
      effect: deny
`, prot))
	for _, c := range []struct {
		s    subject
		want []string
	}{
		{subject{plain.exe, 1000}, []string{"ok", "ok"}},
		{subject{plain.exe, 2000}, []string{"ok", "EPERM"}}, // gid 2000 too (as uses uid = gid)
		{subject{plain.exe, 3000}, []string{"EPERM", "EPERM"}},
		{plain, []string{"EPERM", "EPERM"}}, // root is not special
	} {
		write(t, prot+"/f", "secret")
		must(t, os.Chmod(prot+"/f", 0o666))
		got := c.s.as(t, "read "+prot+"/f", "unlink "+prot+"/f")
		if strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("uid %d: %q, want %q", c.s.uid, got, c.want)
		}
	}
}

// Denials reach user space as events naming the rule, the operation and
// the file.
func TestKernelEvents(t *testing.T) {
	guest.RequireGuest(t)
	plain, keeper := subjects(t)
	root := filesystems(t)["tmpfs"]
	prot := filepath.Join(root, "prot")
	write(t, prot+"/f", "secret")
	b, _ := load(t, keeperPolicy(root, keeper.exe))
	write(t, prot+"/created-later", "secret")
	plain.as(t, "unlink "+prot+"/f", "chmod "+prot+"/created-later")
	want := []struct{ op, path string }{{"delete", prot + "/f"}, {"setattr", prot + "/created-later"}}
	for _, w := range want {
		ev, err := b.ReadEvent(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for the %s event: %v", w.op, err)
		}
		if !ev.Denied || ev.Rule == nil || ev.Rule.Name != "nobody-else" || ev.Rule.Policy != "guard" {
			t.Errorf("event %+v: want a deny by guard/nobody-else", ev)
		}
		if ev.Operation().String() != w.op || ev.Path != w.path {
			t.Errorf("event for %s %s, want %s %s", ev.Operation(), ev.Path, w.op, w.path)
		}
	}
	c, err := b.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Denied != 2 || c.Lost != 0 {
		t.Errorf("counters %+v: want 2 denied, none lost", c)
	}
}

// A descriptor a process opened before the programs were loaded is no way
// around them: every read through it is decided (on the fanotify backend
// such reads raise no event since Linux 6.14; the agent can only report
// them, TestOpenBeforeStartIsReported).
func TestKernelDescriptorOpenedBeforeLoad(t *testing.T) {
	guest.RequireGuest(t)
	plain, keeper := subjects(t)
	root := filesystems(t)["tmpfs"]
	prot := filepath.Join(root, "prot")
	write(t, prot+"/f", "secret")
	// The subject opens the file, says so, waits for a line, then reads.
	cmd := exec.Command(plain.exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+prot+"/f")
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "open" {
		t.Fatalf("the holder did not open the file: %q", lines.Text())
	}
	load(t, keeperPolicy(root, keeper.exe))
	_, _ = io.WriteString(stdin, "read\n")
	if !lines.Scan() {
		t.Fatal("the holder said nothing after its read")
	}
	if got := lines.Text(); got != "EPERM" {
		t.Errorf("a read through a descriptor opened before the load: %s, want EPERM", got)
	}
}

// holdEnv, when set, makes the test binary open the file it names, print
// "open", wait for a line on standard input and then read the file
// through that descriptor, printing the outcome.
const holdEnv = "DRMFILTER_BPF_HOLD"

func hold(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Println(outcome(err))
		return 1
	}
	fmt.Println("open")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_, err = io.ReadAll(f)
	fmt.Println(outcome(err))
	return 0
}

// With LockKernel, no process (this one, root, included) loads a kernel
// module or a kernel to kexec while the programs enforce, and each
// attempt is reported; without it, and once the programs are gone, the
// same calls reach the kernel's own checks, which refuse the junk image
// for what it is (not EPERM).
func TestKernelLockRefusesModulesAndKexec(t *testing.T) {
	guest.RequireGuest(t)
	junk := filepath.Join(t.TempDir(), "junk.ko")
	write(t, junk, strings.Repeat("not a module, not a kernel\n", 64))
	data, err := os.ReadFile(junk)
	must(t, err)
	try := func() map[string]error {
		f, err := os.Open(junk)
		must(t, err)
		defer f.Close()
		return map[string]error{
			"init_module":     unix.InitModule(data, ""),
			"finit_module":    unix.FinitModule(int(f.Fd()), "", 0),
			"kexec_file_load": unix.KexecFileLoad(int(f.Fd()), -1, "", unix.KEXEC_FILE_NO_INITRAMFS),
		}
	}
	unavailable := map[string]bool{}
	for call, err := range try() {
		switch {
		case errors.Is(err, unix.ENOSYS):
			unavailable[call] = true // not in this kernel: nothing to lock
			t.Logf("%s: %v (not built into this kernel)", call, err)
		case err == nil || errors.Is(err, unix.EPERM):
			t.Fatalf("%s of a junk image before the programs load: %v; want the kernel's own refusal, or the test cannot tell", call, err)
		}
	}
	if len(unavailable) == 3 {
		t.Fatal("this kernel has none of init_module, finit_module and kexec_file_load")
	}
	plan, err := Build(compile(t, keeperPolicy(t.TempDir(), "/nonexistent")), BuildOptions{})
	must(t, err)
	unlocked, err := Load(plan, Options{})
	must(t, err)
	for call, err := range try() {
		if !unavailable[call] && errors.Is(err, unix.EPERM) {
			t.Errorf("%s refused by programs loaded without LockKernel: %v", call, err)
		}
	}
	must(t, unlocked.Close())

	plan, err = Build(compile(t, keeperPolicy(t.TempDir(), "/nonexistent")), BuildOptions{})
	must(t, err)
	b, err := Load(plan, Options{LockKernel: true})
	must(t, err)
	refused := 0
	for call, err := range try() {
		if unavailable[call] {
			continue
		}
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("%s with LockKernel: %v, want EPERM", call, err)
		} else {
			refused++
		}
	}
	for i := 0; i < refused; i++ {
		ev, err := b.ReadEvent(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for tamper event %d of %d: %v", i+1, refused, err)
		}
		if ev.Tamper == nil || ev.Tamper.What != "kernel-load" {
			t.Errorf("event %+v: want a kernel-load tamper event", ev)
		}
	}
	must(t, b.Close())
	for call, err := range try() {
		if !unavailable[call] && errors.Is(err, unix.EPERM) {
			t.Errorf("%s still refused after the programs were closed: %v", call, err)
		}
	}
}
