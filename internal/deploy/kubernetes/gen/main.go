// Command gen writes the Kubernetes manifests committed under
// deploy/kubernetes/ from the code that `drmfilter deploy kubernetes` runs.
// Run it from the repository root:
//
//	go run ./internal/deploy/kubernetes/gen
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
)

func main() {
	root := flag.String("root", ".", "the repository root")
	flag.Parse()
	if err := generate(*root); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func generate(root string) error {
	files, err := kubernetes.Committed(root)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(root, kubernetes.CommittedDir, name)
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}
