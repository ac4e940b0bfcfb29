package agent

import (
	"os"
	"testing"
)

// TestRenamedOutFileThatIsGoneIsDroppedByTheNextWalk: a file kept by
// identity costs memory only while it exists. Once it is deleted, its
// handle is stale, and the next walk lets it go.
func TestRenamedOutFileThatIsGoneIsDroppedByTheNextWalk(t *testing.T) {
	h := startAgent(t, func(fs string) string { return policyFor(fs, "") }, nil)
	moved := h.renameOut(t)
	dev, ino := identity(t, moved)
	h.a.index.mu.RLock()
	o, kept := h.a.index.out[fileKey{dev, ino}]
	h.a.index.mu.RUnlock()
	if !kept || o.path != h.path("secret/plan.txt") || !o.handle.Valid() {
		t.Fatalf("renamed-out file: kept %v as %+v, want kept as %s with its handle", kept, o, h.path("secret/plan.txt"))
	}
	if err := os.Remove(moved); err != nil {
		t.Fatal(err)
	}
	h.syncNames(t)
	walks := h.a.index.walks.Load()
	if err := os.WriteFile(h.policy, []byte(policyFor(h.fs, "")+"# reloaded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Reload(); err != nil {
		t.Fatal(err)
	}
	if h.a.index.walks.Load() != walks+1 {
		t.Fatal("the reload did not walk")
	}
	h.a.index.mu.RLock()
	n := len(h.a.index.out)
	h.a.index.mu.RUnlock()
	if n != 0 {
		t.Errorf("%d files still kept by identity after the deleted one's walk, want 0", n)
	}
	if _, ok := h.a.index.lookup(dev, ino); ok {
		t.Error("the deleted file is still indexed")
	}
}
