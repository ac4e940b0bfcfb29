package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/testutil"
)

// The status socket is the health path nobody else can answer on: the
// agent refuses a socket directory that anyone but root could write to
// (or that sits below a directory another user owns), and says which and
// why.
func TestListenStatusRefusesADirectoryOthersCouldWrite(t *testing.T) {
	testutil.RequireRoot(t)
	const nobody = 65534
	for _, c := range []struct {
		name  string
		setup func(base string) (socketDir string) // base is root's, 0700
		want  string                               // "" : the socket is created
	}{
		{"root's 0700 directory", func(base string) string { return mkdir(t, base, "ok", 0o700, 0) }, ""},
		{"root's 0755 directory", func(base string) string { return mkdir(t, base, "ok", 0o755, 0) }, ""},
		{"missing directory, created 0700", func(base string) string { return filepath.Join(base, "new", "run") }, ""},
		{"writable by others", func(base string) string { return mkdir(t, base, "d", 0o777, 0) }, "is writable by its group or others (mode 0777)"},
		{"writable by its group", func(base string) string { return mkdir(t, base, "d", 0o770, 0) }, "is writable by its group or others (mode 0770)"},
		{"sticky like /tmp", func(base string) string { return mkdir(t, base, "d", 0o1777, 0) }, "is writable by its group or others (mode 1777)"},
		{"owned by another user", func(base string) string { return mkdir(t, base, "d", 0o700, nobody) }, "is owned by uid 65534, not root"},
		{"below another user's directory", func(base string) string {
			return mkdir(t, mkdir(t, base, "home", 0o755, nobody), "d", 0o700, 0)
		}, "above it, " + "BASE/home is owned by uid 65534, not root"},
		{"symbolic link to a directory others can write to", func(base string) string {
			target := mkdir(t, base, "shared", 0o777, 0)
			link := filepath.Join(base, "link")
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "BASE/shared is writable by its group or others"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			if err := os.Chmod(base, 0o700); err != nil {
				t.Fatal(err)
			}
			base, _ = filepath.EvalSymlinks(base)
			sock := filepath.Join(c.setup(base), "status.sock")
			a := &Agent{cfg: config.Config{StatusSocket: sock}}
			ln, err := a.ListenStatus()
			if c.want == "" {
				if err != nil {
					t.Fatalf("ListenStatus: %v", err)
				}
				defer ln.Close()
				fi, err := os.Stat(sock)
				if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
					t.Errorf("socket %s: %v %v", sock, fi, err)
				}
				if fi, err := os.Stat(filepath.Dir(sock)); err != nil || fi.Mode().Perm()&0o022 != 0 {
					t.Errorf("socket directory: %v %v", fi, err)
				}
				return
			}
			var de *SocketDirError
			want := strings.ReplaceAll(c.want, "BASE", base)
			if ln != nil {
				ln.Close()
			}
			if !errors.As(err, &de) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "--status-socket") {
				t.Fatalf("ListenStatus: %v\nwant a SocketDirError with %q", err, want)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a socket was created in the refused directory: %v", err)
			}
		})
	}
}

// A stale socket (from an agent that was killed) is replaced; a file that
// is not a socket is the operator's, and is left alone.
func TestListenStatusReplacesOnlyASocket(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "status.sock")
	old, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old.(*net.UnixListener).SetUnlinkOnClose(false)
	old.Close() // the socket file stays, as after a kill
	a := &Agent{cfg: config.Config{StatusSocket: sock}}
	ln, err := a.ListenStatus()
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	ln.Close()

	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.cfg.StatusSocket = file
	if ln, err := a.ListenStatus(); err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("over a regular file: %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep\n" {
		t.Errorf("the file was touched: %q %v", b, err)
	}
}

// On a port any local user could listen on, the TCP endpoint serves
// /metrics only: its /healthz and /readyz could be anyone's answer.
// Below net.ipv4.ip_unprivileged_port_start only root can listen, and
// they are served.
func TestServeMetricsServesHealthOnlyOnAPortOnlyRootMayUse(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	serve := func(ln net.Listener) (get func(path string) (int, string)) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.a.ServeMetrics(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ServeMetrics: %v", err)
			}
		})
		return func(path string) (int, string) {
			resp, err := http.Get("http://" + ln.Addr().String() + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	get := serve(ln)
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "drmfilter_events_total") {
		t.Errorf("/metrics: %d %.200s", code, body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(p); code != http.StatusNotFound || !strings.Contains(body, "drmfilter status --check ready") {
			t.Errorf("%s on an unprivileged port: %d %q, want 404 naming the status check", p, code, body)
		}
	}

	start := unprivilegedPortStart()
	var priv net.Listener
	for port := min(start, 1024) - 1; port > 0 && priv == nil; port-- {
		priv, _ = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	}
	if priv == nil {
		t.Skipf("no free port below net.ipv4.ip_unprivileged_port_start (%d)", start)
	}
	get = serve(priv)
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz on port %s: %d %q", priv.Addr(), code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz on port %s: %d", priv.Addr(), code)
	}
}

// ListenMetrics on an address another process holds fails, naming the
// address, the cause and the way out.
func TestListenMetricsOnATakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	a := &Agent{cfg: config.Config{MetricsAddress: taken.Addr().String()}}
	ln, err := a.ListenMetrics()
	if err == nil {
		ln.Close()
		t.Fatal("listened on a taken address")
	}
	for _, want := range []string{taken.Addr().String() + " is already in use by another process", "address already in use", "--metrics-address", `"-" to disable`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if ln, err := (&Agent{}).ListenMetrics(); ln != nil || err != nil {
		t.Errorf("disabled: %v %v", ln, err)
	}
}

// mkdir makes base/name with mode and owner (chmod after mkdir, so the
// umask does not matter).
func mkdir(t *testing.T, base, name string, mode os.FileMode, uid int) string {
	t.Helper()
	p := filepath.Join(base, name)
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode&os.ModePerm|stickyIf(mode)); err != nil {
		t.Fatal(err)
	}
	return p
}

func stickyIf(mode os.FileMode) os.FileMode {
	if mode&0o1000 != 0 {
		return os.ModeSticky
	}
	return 0
}
