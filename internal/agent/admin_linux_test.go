package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drmfilter/drmfilter/internal/config"
)

// TestAdminRequestsNeedTheKey: with admin keys configured, root on the
// admin socket cannot stop the agent or change its policies without a
// signature by one of them, nor replay one; with the key it can.
func TestAdminRequestsNeedTheKey(t *testing.T) {
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	keys := filepath.Join(dir, "admin.pub")
	if err := os.WriteFile(keys, ssh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "admin.sock")
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, func(c *config.Config) {
		c.AdminSocket, c.AdminKeys = sock, []string{keys}
	})
	ln, err := h.a.ListenAdmin()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = h.a.ServeAdminOn(ctx, ln) }()
	ask := func(req AdminRequest, s ssh.Signer) error {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return Administer(c, sock, req, s)
	}
	if err := ask(AdminRequest{Op: AdminStop}, nil); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("unsigned stop: %v, want a refusal", err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := ssh.NewSignerFromKey(other)
	if err := ask(AdminRequest{Op: AdminStop}, wrong); err == nil {
		t.Fatal("a stop signed by another key was accepted")
	}
	// A signature over one request does not authorize another.
	if err := ask(AdminRequest{Op: AdminStop}, replaying{signer, AdminRequest{Op: AdminReload}}); err == nil {
		t.Fatal("a stop carrying a reload's signature was accepted")
	}
	if !h.a.ready.Load() {
		t.Fatal("the agent stopped after refused requests")
	}
	if err := ask(AdminRequest{Op: AdminReload}, signer); err != nil {
		t.Fatalf("signed reload: %v", err)
	}
	if err := ask(AdminRequest{Op: AdminStop}, signer); err != nil {
		t.Fatalf("signed stop: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for h.a.ready.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the agent still runs after a signed stop")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replaying signs the bytes of another request than the one sent.
type replaying struct {
	ssh.Signer
	other AdminRequest
}

func (r replaying) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	// The challenge is in data; the signature covers the other request.
	lines := strings.Split(string(data), "\n")
	var ch adminChallenge
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "node="):
			ch.Node = strings.TrimPrefix(l, "node=")
		case strings.HasPrefix(l, "challenge="):
			ch.Challenge = strings.TrimPrefix(l, "challenge=")
		case strings.HasPrefix(l, "pid="):
			_, _ = fmt.Sscan(strings.TrimPrefix(l, "pid="), &ch.PID)
		}
	}
	return r.Signer.Sign(rand, r.other.SignedBytes(ch))
}
