package kubernetes

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestCommittedManifestsAreInSync fails when deploy/kubernetes/ differs
// from what the code generates.
func TestCommittedManifestsAreInSync(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	files, err := Committed(root)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		path := filepath.Join(root, CommittedDir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v; run `%s` from the repository root", path, err, GenerateCommand)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the code generates; run `%s` from the repository root and commit the result", filepath.Join(CommittedDir, name), GenerateCommand)
		}
	}
}
