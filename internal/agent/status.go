package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drmfilter/drmfilter/internal/version"
)

// Status is what `drmfilter status` shows. Its JSON form is stable.
type Status struct {
	Version       string            `json:"version"`
	PID           int               `json:"pid"`
	Uptime        string            `json:"uptime"`
	Ready         bool              `json:"ready"`
	Mode          string            `json:"mode"`
	FailureMode   string            `json:"failureMode"`
	Policy        PolicyStatus      `json:"policy"`
	Environment   EnvSummary        `json:"environment"`
	Settings      map[string]string `json:"settings"`
	Marked        []string          `json:"markedFilesystems"`
	IndexedFiles  int               `json:"indexedFiles"`
	Counters      map[string]uint64 `json:"counters"`
	AuditDropped  uint64            `json:"auditDropped"`
	AuditWritten  uint64            `json:"auditWritten"`
	ReloadFailure uint64            `json:"reloadFailures"`
}

// PolicyStatus describes the policy in force.
type PolicyStatus struct {
	Generation uint64    `json:"generation"`
	Hash       string    `json:"hash"`
	LoadedAt   time.Time `json:"loadedAt"`
	Files      []string  `json:"files"`
	Rules      int       `json:"rules"`
	// Watched is true while the policy files are watched for changes
	// (run --watch); false means only SIGHUP or the API reloads them.
	Watched bool `json:"watched"`
	// Error is the last policy that was rejected (the one above stays in
	// force); empty when the newest policy loaded.
	Error string `json:"error,omitempty"`
}

// EnvSummary is the compact environment of the node.
type EnvSummary struct {
	Hypervisor string `json:"hypervisor"`
	Cloud      string `json:"cloud"`
	Container  string `json:"container"`
	Nested     bool   `json:"nested"`
}

// Status reports the agent's current state.
func (a *Agent) Status() Status {
	st := a.state.Load()
	s := a.stats
	counters := map[string]uint64{
		"events": s.total.Load(), "self": s.self.Load(), "overflows": s.overflows.Load(),
		"indexHits": s.indexHits.Load(), "ignoreMarks": s.ignoreMarks.Load(), "exempt": s.exempt.Load(),
		"late": s.late.Load(), "respondErrors": s.respondErrors.Load(), "mountChanges": s.mountChanges.Load(),
	}
	for i, op := range opNames {
		for j, d := range decisionNames {
			counters[op.String()+"."+d] = s.events[i][j].Load()
		}
	}
	for i, r := range failureNames {
		counters["failure."+r] = s.fails[i].Load()
		counters["failure."+r+".allowed"] = s.failAllows[i].Load()
	}
	counters["execGrants"] = s.grantAllows.Load()
	var perr string
	if p := a.policyErr.Load(); p != nil {
		perr = *p
	}
	return Status{
		Version: version.Get().Version, PID: os.Getpid(), Uptime: time.Since(a.started).Round(time.Second).String(),
		Ready: a.ready.Load(), Mode: a.cfg.Mode, FailureMode: string(a.cfg.FailureMode),
		Policy:      PolicyStatus{Generation: st.gen, Hash: st.hash, LoadedAt: st.loadedAt, Files: st.files, Rules: st.m.Rules(), Watched: a.policyWatched.Load(), Error: perr},
		Environment: EnvSummary{Hypervisor: orNone(a.env.Hypervisor), Cloud: orNone(a.env.Cloud), Container: orNone(a.env.Container), Nested: a.env.Nested.Available},
		Settings:    a.Settings(), Marked: a.markedList(), IndexedFiles: a.index.len(), Counters: counters,
		AuditDropped: a.audit.Dropped(), AuditWritten: a.audit.Written(), ReloadFailure: s.reloadFailures.Load(),
	}
}

// ServeStatus answers status requests on a unix socket that only root
// can reach (the socket is 0600 in a 0700 directory, and the peer's
// credentials are checked), until ctx is done.
func (a *Agent) ServeStatus(ctx context.Context) error {
	path := a.cfg.StatusSocket
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("status socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("status socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		ln.Close()
		os.Remove(path)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("status socket: %w", err)
		}
		go a.answerStatus(c.(*net.UnixConn))
	}
}

func (a *Agent) answerStatus(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if uid, err := peerUID(c); err != nil || uid != 0 {
		_, _ = c.Write([]byte(`{"error":"permission denied: only root may ask the agent"}` + "\n"))
		return
	}
	_ = json.NewEncoder(c).Encode(a.Status())
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// QueryStatus asks the agent listening on path for its status.
func QueryStatus(ctx context.Context, path string) (Status, error) {
	var s Status
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return s, fmt.Errorf("is the agent running? %w", err)
	}
	defer c.Close()
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
