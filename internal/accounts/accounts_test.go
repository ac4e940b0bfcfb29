package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func root(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	if err := os.MkdirAll(filepath.Join(r, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "# comment\nroot:x:0:0:root:/root:/bin/sh\n\nalice:x:1001:1001::/home/alice:/bin/bash\nbroken:x:notanumber:1::/:/bin/sh\n",
		"etc/group":  "root:x:0:\nfinance:x:2000:alice,bob\n",
	}
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(r, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func TestLookupUnderRoot(t *testing.T) {
	f := Files{Root: root(t)}
	if id, err := f.LookupUser("alice"); err != nil || id != 1001 {
		t.Errorf("alice: %d, %v", id, err)
	}
	if id, err := f.LookupUser("root"); err != nil || id != 0 {
		t.Errorf("root: %d, %v", id, err)
	}
	if id, err := f.LookupGroup("finance"); err != nil || id != 2000 {
		t.Errorf("group finance: %d, %v", id, err)
	}
	if _, err := f.LookupUser("mallory"); !errors.Is(err, ErrUnknown) || !strings.Contains(err.Error(), "etc/passwd") {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := f.LookupGroup("alice"); !errors.Is(err, ErrUnknown) {
		t.Errorf("a user name is not a group: %v", err)
	}
	if _, err := f.LookupUser("broken"); err == nil || !strings.Contains(err.Error(), `bad ID "notanumber"`) {
		t.Errorf("bad ID: %v", err)
	}
	if _, err := (Files{Root: t.TempDir()}).LookupUser("alice"); err == nil || errors.Is(err, ErrUnknown) {
		t.Errorf("missing passwd file: %v", err)
	}
}
