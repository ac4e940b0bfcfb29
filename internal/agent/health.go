package agent

// The status socket is the agent's authoritative health path: a unix
// socket in a directory only root can write to, served by root. This file
// has its listener, which refuses a directory someone else could write to,
// and the client that checks who serves the socket before believing it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrNotAgent is matched by the error of QueryAgent when the process that
// listens on the status socket is not root, so not the agent.
var ErrNotAgent = errors.New("not served by the drmfilter agent")

// NotAgentError says who listens on a status socket in the agent's place.
type NotAgentError struct {
	Path string // the status socket
	UID  uint32 // the listener's user (SO_PEERCRED)
}

func (e *NotAgentError) Error() string {
	return fmt.Sprintf("%s is %v: the process listening on it runs as uid %d, and the agent runs as root", e.Path, ErrNotAgent, e.UID)
}

// Is makes a NotAgentError match ErrNotAgent.
func (e *NotAgentError) Is(target error) bool { return target == ErrNotAgent }

// SocketDirError is returned by ListenStatus when someone other than root
// could replace the status socket: its directory is not root's alone.
type SocketDirError struct {
	Socket string // the configured status socket
	Dir    string // the directory at fault (the socket's, or one above it)
	Reason string // what is wrong with Dir
}

func (e *SocketDirError) Error() string {
	return fmt.Sprintf("status socket %s: %s %s: another user could remove the agent's socket and listen in its place; "+
		"use a directory only root can write to (chmod 0700, owned by root), or set --status-socket (statusSocket in the config file) "+
		"to a path in one, such as the default /run/drmfilter/status.sock", e.Socket, e.Dir, e.Reason)
}

// ListenStatus creates the status socket (Config.StatusSocket), or returns
// a nil listener when it is "". It creates the socket's directory 0700 if
// it is missing, and refuses one that is not root's alone: owned by another
// user, writable by its group or others, or below a directory root does
// not own (SocketDirError). Directories above it must be root's but may be
// writable by others: /tmp is, but it is sticky, so no one else can rename
// root's directory out of it; so is the emptyDir that holds the directory
// in a pod (the kubelet makes it 0777), which only the pod's processes,
// all root, can reach. Call it before Run, and do not start when it fails.
func (a *Agent) ListenStatus() (net.Listener, error) {
	path := a.cfg.StatusSocket
	if path == "" {
		return nil, nil
	}
	return listenSocket("status socket", path)
}

// listenSocket creates the unix socket at path, 0600, in a directory
// made 0700 if missing and refused when it is not root's alone
// (checkSocketDir); what names the socket in errors.
func listenSocket(what, path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := checkSocketDir(path, dir); err != nil {
		return nil, err
	}
	// A socket left by an agent that was killed is replaced; anything else
	// at the path is the operator's, and is not removed.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s %s: exists and is not a socket (%s)", what, path, fi.Mode().Type())
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return ln, nil
}

// checkSocketDir returns a SocketDirError unless dir (after symbolic links
// are resolved) is owned by root and not writable by its group or others,
// and every directory above it is owned by root.
func checkSocketDir(socket, dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("status socket %s: %w", socket, err)
	}
	for p, first := real, true; ; p, first = filepath.Dir(p), false {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("status socket %s: %w", socket, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("status socket %s: no owner for %s", socket, p)
		}
		where := p
		if !first {
			where = "above it, " + p
		}
		if !fi.IsDir() {
			return &SocketDirError{Socket: socket, Dir: where, Reason: "is not a directory"}
		}
		if st.Uid != 0 {
			return &SocketDirError{Socket: socket, Dir: where, Reason: fmt.Sprintf("is owned by uid %d, not root", st.Uid)}
		}
		if first && st.Mode&0o022 != 0 {
			return &SocketDirError{Socket: socket, Dir: where, Reason: fmt.Sprintf("is writable by its group or others (mode %04o)", st.Mode&0o7777)}
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// ServeStatusOn answers status requests on ln (from ListenStatus; nil
// serves nothing) until ctx is done, then closes ln, which removes the
// socket. Only root peers are answered.
func (a *Agent) ServeStatusOn(ctx context.Context, ln net.Listener) error {
	return serveUnix(ctx, ln, "status socket", a.answerStatus)
}

// serveUnix hands each connection on ln (from listenSocket; nil serves
// nothing) to answer, in a goroutine of its own, until ctx is done; then
// it closes ln, which removes the socket.
func serveUnix(ctx context.Context, ln net.Listener, what string, answer func(*net.UnixConn)) error {
	if ln == nil {
		return nil
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		go answer(c.(*net.UnixConn))
	}
}

// QueryAgent asks the agent listening on the status socket at path for
// its status, as QueryStatus does, but first checks who listens there:
// the kernel's record of the listener's credentials (SO_PEERCRED) must be
// root, or the answer is not the agent's (NotAgentError, matching
// ErrNotAgent). A user who cannot write to the socket's directory cannot
// listen there at all; this check is what makes an answer trustworthy
// even where one could.
func QueryAgent(ctx context.Context, path string) (Status, error) {
	var s Status
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return s, fmt.Errorf("is the agent running? %w", err)
	}
	defer c.Close()
	uid, err := peerUID(c.(*net.UnixConn))
	if err != nil {
		return s, fmt.Errorf("status socket %s: who listens: %w", path, err)
	}
	if uid != 0 {
		return s, &NotAgentError{Path: path, UID: uid}
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var raw json.RawMessage
	if err := json.NewDecoder(c).Decode(&raw); err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	var e struct{ Error string }
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return s, errors.New(e.Error)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	return s, nil
}

// Close releases what New opened (the audit log and the container
// runtime client) for an agent that will not Run, as when its listeners
// could not be bound. Run releases them itself.
func (a *Agent) Close() {
	a.audit.Close(context.Background())
	if a.cri != nil {
		a.cri.Close()
	}
}
