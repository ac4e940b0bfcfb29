package agent

// The admin socket is the one way to stop the agent, remove its programs
// or hand them to an upgraded executable while it protects itself (the
// bpf backend's self-protection refuses signals from every other
// process). A request is authorized when it comes from root (SO_PEERCRED)
// and, when the configuration names admin keys, carries a signature by
// one of them over a challenge the agent made for this connection: root
// on the machine without the private key cannot stop it, and a recorded
// request cannot be replayed.
//
// The exchange, one JSON object per line:
//
//	agent:  {"challenge": "<base64 random>", "node": "<hostname>", "pid": N}
//	client: {"op": "stop", "unload": true, "signature": {...}}
//	agent:  {"ok": true} or {"error": "..."}
//
// The signed bytes are signedRequest's: the protocol version, the
// operation and its arguments, the node and the challenge.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/audit"
	"github.com/drmfilter/drmfilter/internal/config"
)

// ErrNoAgent is matched by Administer's error when no agent listens on
// the admin socket.
var ErrNoAgent = errors.New("no agent answers on the admin socket")

// Admin operations.
const (
	AdminStop    = "stop"    // exit; with Unload, remove the programs first
	AdminUpgrade = "upgrade" // trust Exe to take over the pinned programs, then exit leaving them
	// AdminAwait trusts the file next renamed or linked to Exe (a package
	// manager installing the new executable) to take over; the agent
	// goes on running.
	AdminAwait        = "await-upgrade"
	AdminPolicyPut    = "policy-put"    // write Data as the policy file Name, and reload
	AdminPolicyRemove = "policy-remove" // remove the policy file Name, and reload
	AdminReload       = "reload"        // reload the policies and reopen the audit log (SIGHUP's work)
	AdminPolicySet    = "policy-set"    // make Files the whole content of the policy directory, and reload
	// AdminConfigPut writes Data as the configuration file; it takes
	// effect at the agent's next start.
	AdminConfigPut = "config-put"
	// AdminHandover hands the pinned programs to the process that asks
	// (an agent starting with bpf.takeOverRunning: the DaemonSet's new
	// pod); this agent then stops enforcing and waits to be stopped.
	AdminHandover = "handover"
)

// AdminRequest is what `drmfilter stop` and `drmfilter upgrade` ask.
type AdminRequest struct {
	Op     string `json:"op"`
	Unload bool   `json:"unload,omitempty"` // AdminStop: the kernel stops enforcing
	Exe    string `json:"exe,omitempty"`    // AdminUpgrade, AdminAwait: the executable of the agent that takes over
	Name   string `json:"name,omitempty"`   // AdminPolicy*: the policy file's name in the policy directory
	Data   []byte `json:"data,omitempty"`   // AdminPolicyPut: its content; AdminConfigPut: the configuration
	// Files are AdminPolicySet's policy files.
	Files []AdminFile `json:"files,omitempty"`
	// Signature is over SignedBytes, by one of the configured admin
	// keys; nil when none is configured.
	Signature *ssh.Signature `json:"signature,omitempty"`
}

// AdminFile is a file of a request: its base name and content.
type AdminFile struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

type adminChallenge struct {
	Challenge string `json:"challenge"`
	Node      string `json:"node"`
	PID       int    `json:"pid"`
}

type adminReply struct {
	OK    bool   `json:"ok,omitempty"`
	Error string `json:"error,omitempty"`
}

// stopRequest is an authorized stop, handed to Run.
type stopRequest struct {
	unload bool
	exe    string // upgrade: the successor's executable
	// handover is the process to hand the programs to, 0 if none.
	handover int32
	done     chan error
	// answered is closed once the requester has its answer: Run waits
	// for it (briefly), so that the process does not exit first.
	answered chan struct{}
}

// SignedBytes are the bytes a request's signature covers.
func (r *AdminRequest) SignedBytes(ch adminChallenge) []byte {
	h := sha256.New()
	h.Write(r.Data)
	for _, f := range r.Files {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	sum := h.Sum(nil)
	return fmt.Appendf(nil, "drmfilter-admin-v1\nop=%s\nunload=%t\nexe=%s\nname=%s\ndata=%x\nnode=%s\npid=%d\nchallenge=%s\n",
		r.Op, r.Unload, r.Exe, r.Name, sum, ch.Node, ch.PID, ch.Challenge)
}

// ListenAdmin creates the admin socket (Config.AdminSocket), with the
// status socket's rules for its directory; nil when it is "".
func (a *Agent) ListenAdmin() (net.Listener, error) {
	path := a.cfg.AdminSocket
	if path == "" {
		return nil, nil
	}
	if _, err := a.adminKeys(); err != nil {
		return nil, err
	}
	return listenSocket("admin socket", path)
}

// adminKeys reads the configured admin keys.
func (a *Agent) adminKeys() ([]ssh.PublicKey, error) {
	var keys []ssh.PublicKey
	for _, f := range a.cfg.AdminKeys {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("admin key: %w", err)
		}
		for len(strings.TrimSpace(string(b))) > 0 {
			k, _, _, rest, err := ssh.ParseAuthorizedKey(b)
			if err != nil {
				return nil, fmt.Errorf("admin key %s: %w", f, err)
			}
			keys = append(keys, k)
			b = rest
		}
	}
	if len(a.cfg.AdminKeys) > 0 && len(keys) == 0 {
		return nil, fmt.Errorf("admin keys %v hold no key", a.cfg.AdminKeys)
	}
	return keys, nil
}

// ServeAdminOn answers administration requests on ln until ctx is done.
func (a *Agent) ServeAdminOn(ctx context.Context, ln net.Listener) error {
	return serveUnix(ctx, ln, "admin socket", func(c *net.UnixConn) { a.answerAdmin(ctx, c) })
}

func (a *Agent) answerAdmin(ctx context.Context, c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	enc := json.NewEncoder(c)
	cred, err := peerCred(c)
	if err != nil || cred.Uid != 0 {
		_ = enc.Encode(adminReply{Error: "permission denied: only root may administer the agent"})
		return
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		_ = enc.Encode(adminReply{Error: "no randomness for a challenge"})
		return
	}
	host, _ := os.Hostname()
	ch := adminChallenge{Challenge: base64.StdEncoding.EncodeToString(nonce), Node: host, PID: os.Getpid()}
	if err := enc.Encode(ch); err != nil {
		return
	}
	var req AdminRequest
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&req); err != nil {
		_ = enc.Encode(adminReply{Error: "read the request: " + err.Error()})
		return
	}
	rec := &audit.Record{Decision: audit.DecisionAudit, Operation: "admin-" + req.Op, PID: cred.Pid, UID: cred.Uid, GID: cred.Gid, Env: a.envTag}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", cred.Pid)); err == nil {
		rec.Exe = exe
	}
	fail := func(msg string) {
		rec.Decision, rec.Reason = audit.DecisionDeny, msg
		a.audit.Write(rec)
		a.log.Warn("refused an administration request", "op", req.Op, "pid", cred.Pid, "reason", msg)
		_ = enc.Encode(adminReply{Error: msg})
	}
	if err := a.authorize(&req, ch); err != nil {
		fail(err.Error())
		return
	}
	switch req.Op {
	case AdminAwait, AdminPolicyPut, AdminPolicyRemove, AdminPolicySet, AdminConfigPut, AdminReload:
		err := a.administer(&req)
		if err != nil {
			fail(err.Error())
			return
		}
		rec.Reason = fmt.Sprintf("authorized: exe=%s name=%s", req.Exe, req.Name)
		a.audit.Write(rec)
		a.log.Info("an authorized administration request", "op", req.Op, "exe", req.Exe, "name", req.Name, "pid", cred.Pid)
		_ = enc.Encode(adminReply{OK: true})
		return
	}
	sr := stopRequest{done: make(chan error, 1), answered: make(chan struct{})}
	defer func() {
		select {
		case <-sr.answered:
		default:
			close(sr.answered)
		}
	}()
	switch req.Op {
	case AdminStop:
		sr.unload = req.Unload
	case AdminHandover:
		if a.backend != config.BackendBPF || a.cfg.BPF.PinPath == "" {
			fail("handover: this agent has no pinned programs to hand over")
			return
		}
		sr.handover = cred.Pid
	case AdminUpgrade:
		if !filepath.IsAbs(req.Exe) {
			fail(fmt.Sprintf("upgrade: the new executable %q is not an absolute path", req.Exe))
			return
		}
		sr.exe = req.Exe
	default:
		fail(fmt.Sprintf("unknown operation %q", req.Op))
		return
	}
	rec.Reason = fmt.Sprintf("authorized: unload=%t exe=%s", req.Unload, req.Exe)
	a.audit.Write(rec)
	a.log.Info("an authorized administration request", "op", req.Op, "unload", req.Unload, "exe", req.Exe, "pid", cred.Pid)
	select {
	case a.stopReq <- sr:
	case <-ctx.Done():
		_ = enc.Encode(adminReply{Error: "the agent is stopping"})
		return
	}
	select {
	case err := <-sr.done:
		if err != nil {
			_ = enc.Encode(adminReply{Error: err.Error()})
			return
		}
	case <-time.After(25 * time.Second):
		_ = enc.Encode(adminReply{Error: "the agent did not finish stopping in time"})
		return
	}
	_ = enc.Encode(adminReply{OK: true})
	close(sr.answered)
}

// authorize checks req's signature when admin keys are configured.
func (a *Agent) authorize(req *AdminRequest, ch adminChallenge) error {
	keys, err := a.adminKeys()
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil // root on the admin socket is enough
	}
	if req.Signature == nil {
		return errors.New("the request is not signed, and the agent's configuration requires a signature by an admin key (drmfilter stop --key)")
	}
	data := req.SignedBytes(ch)
	for _, k := range keys {
		if k.Verify(data, req.Signature) == nil {
			return nil
		}
	}
	return errors.New("the request's signature is by none of the configured admin keys")
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// Administer sends req to the agent on the admin socket at path, signed
// with signer when it is not nil, and waits for the agent to have done
// it.
func Administer(ctx context.Context, path string, req AdminRequest, signer ssh.Signer) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("%w (%s): %w", ErrNoAgent, path, err)
	}
	c := conn.(*net.UnixConn)
	defer c.Close()
	if cred, err := peerCred(c); err != nil || cred.Uid != 0 {
		return fmt.Errorf("admin socket %s: %w", path, ErrNotAgent)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	var ch adminChallenge
	var rep adminReply
	if json.Unmarshal(first, &rep) == nil && rep.Error != "" {
		return errors.New(rep.Error)
	}
	if err := json.Unmarshal(first, &ch); err != nil || ch.Challenge == "" {
		return fmt.Errorf("admin socket: no challenge from the agent")
	}
	if signer != nil {
		sig, err := signer.Sign(rand.Reader, req.SignedBytes(ch))
		if err != nil {
			return fmt.Errorf("sign the request: %w", err)
		}
		req.Signature = sig
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := dec.Decode(&rep); err != nil {
		return fmt.Errorf("admin socket: the agent's answer: %w", err)
	}
	if !rep.OK {
		return errors.New(rep.Error)
	}
	return nil
}

// policyName is what a policy file written through the admin socket may
// be called: a plain YAML file name.
var policyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml$`)

// administer does what an authorized request that does not stop the
// agent asks.
func (a *Agent) administer(req *AdminRequest) error {
	switch req.Op {
	case AdminReload:
		return errors.Join(a.Reload(), a.ReopenAudit())
	case AdminAwait:
		b := a.bpf.Load()
		if b == nil || a.cfg.BPF.PinPath == "" {
			return errors.New("await-upgrade: the agent has no pinned programs to hand over (bpf backend with bpf.pinPath)")
		}
		if !filepath.IsAbs(req.Exe) {
			return fmt.Errorf("await-upgrade: %q is not an absolute path", req.Exe)
		}
		return b.AwaitSuccessor(filepath.Join(a.cfg.HostRoot, req.Exe))
	case AdminPolicyPut:
		return a.changePolicies(map[string][]byte{req.Name: req.Data}, false)
	case AdminPolicyRemove:
		return a.changePolicies(map[string][]byte{req.Name: nil}, false)
	case AdminPolicySet:
		set := map[string][]byte{}
		for _, f := range req.Files {
			if f.Data == nil {
				f.Data = []byte{}
			}
			if _, dup := set[f.Name]; dup {
				return fmt.Errorf("two policy files are named %s", f.Name)
			}
			set[f.Name] = f.Data
		}
		if len(set) == 0 {
			return errors.New("policy-set: no policy files")
		}
		return a.changePolicies(set, true)
	case AdminConfigPut:
		if a.configFile == "" {
			return errors.New("the agent was started without a configuration file (--config) to write")
		}
		c, err := config.Load(bytes.NewReader(req.Data), a.configFile)
		if err == nil {
			// As New checks it: tuned for this machine, then validated.
			c.Tune(config.Facts{Hypervisor: a.env.Hypervisor, Cloud: a.env.Cloud, Nested: a.env.Nested.Available, CPUs: runtime.NumCPU()})
			err = c.Validate()
		}
		if err != nil {
			return fmt.Errorf("the new configuration does not load, so nothing changed: %w", err)
		}
		if err := writeAtomic(a.configFile, req.Data); err != nil {
			return err
		}
		select {
		case a.resealNow <- struct{}{}:
		default:
		}
		return nil
	}
	return fmt.Errorf("unknown operation %q", req.Op)
}

// writeAtomic writes data to path through a temporary file renamed over
// it: a reader sees the old content or the new.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".drmfilter-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// changePolicies writes the policy files changes names (nil: removed)
// into the agent's policy directory, or, with replace, makes them its
// whole content, and reloads. A set that does not load is undone: the
// directory is as before and the reload's error returned.
func (a *Agent) changePolicies(changes map[string][]byte, replace bool) error {
	if a.source != nil {
		return errors.New("the policies come from the cluster's ConfigMap: change them there")
	}
	for name := range changes {
		if !policyName.MatchString(name) {
			return fmt.Errorf("%q is not a policy file name (NAME.yaml)", name)
		}
	}
	dir := ""
	for _, p := range a.cfg.Policies {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dir = p
			break
		}
	}
	if dir == "" {
		return fmt.Errorf("no policy directory among %v to write policies to", a.cfg.Policies)
	}
	a.reloadMu.Lock()
	before, err := readPolicyDir(dir)
	if err != nil {
		a.reloadMu.Unlock()
		return err
	}
	after := map[string][]byte{}
	if !replace {
		for n, b := range before {
			after[n] = b
		}
	}
	for n, b := range changes {
		if b == nil {
			if _, ok := after[n]; !ok {
				a.reloadMu.Unlock()
				return fmt.Errorf("no policy file %s", n)
			}
			delete(after, n)
			continue
		}
		after[n] = b
	}
	// put makes the directory's policy files want's.
	put := func(want map[string][]byte) error {
		cur, err := readPolicyDir(dir)
		if err != nil {
			return err
		}
		var errs []error
		for n, b := range want {
			if old, ok := cur[n]; !ok || !bytes.Equal(old, b) {
				errs = append(errs, writeAtomic(filepath.Join(dir, n), b))
			}
		}
		for n := range cur {
			if _, ok := want[n]; !ok {
				errs = append(errs, os.Remove(filepath.Join(dir, n)))
			}
		}
		return errors.Join(errs...)
	}
	err = put(after)
	a.reloadMu.Unlock()
	if err == nil {
		err = a.Reload()
	}
	if err != nil {
		a.reloadMu.Lock()
		_ = put(before)
		a.reloadMu.Unlock()
		_ = a.Reload()
		return fmt.Errorf("the policies with this change do not load, so nothing changed: %w", err)
	}
	select {
	case a.resealNow <- struct{}{}:
	default:
	}
	return nil
}

// readPolicyDir reads the policy files (NAME.yaml, NAME.yml) in dir.
func readPolicyDir(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if n := e.Name(); policyName.MatchString(n) && e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, n))
			if err != nil {
				return nil, err
			}
			out[n] = b
		}
	}
	return out, nil
}
