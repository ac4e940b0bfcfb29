// Package dist builds what drmfilter ships besides its source: the static
// agent binary (this package), the .deb and .rpm packages (dist/pkg) and the
// agent's OCI image (dist/image). cmd/mkdist drives them; nothing here is
// linked into the drmfilter binary.
//
// Files: build.go (the static binary and the repository's layout),
// version.go (package and image versions derived from the stamped one).
package dist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is the drmfilter module path; Repository is where its source lives.
const (
	Module     = "github.com/drmfilter/drmfilter"
	Repository = "https://github.com/drmfilter/drmfilter"
	// License goes into package metadata and the image's labels. The
	// repository has no LICENSE file yet, so it is SPDX's NOASSERTION; set
	// the SPDX expression when a license is chosen.
	License = "NOASSERTION"
)

// Arches lists the architectures packages and images are built for (GOARCH
// names).
var Arches = []string{"amd64", "arm64"}

// CheckArch reports whether arch is one of Arches.
func CheckArch(arch string) error {
	for _, a := range Arches {
		if a == arch {
			return nil
		}
	}
	return fmt.Errorf("unsupported architecture %q (want one of %s)", arch, strings.Join(Arches, ", "))
}

// BuildOptions says which drmfilter binary BuildBinary builds.
type BuildOptions struct {
	// RepoDir is the root of the drmfilter checkout (holds go.mod).
	RepoDir string
	// Version is stamped into internal/version.Version.
	Version string
	// Arch is the GOARCH to build for (GOOS is always linux).
	Arch string
	// Output is the path of the binary to write.
	Output string
	// Tags are the build tags: PackageTags or ImageTags.
	Tags []string
}

// Build tags of the shipped binaries. Both leave out the fleet commands
// (deploy, undeploy, fleet), which link the cloud SDKs and client-go and
// would more than double the agent's memory; the packages, for machines
// outside Kubernetes, also leave out the agent's in-cluster side.
var (
	PackageTags = []string{"nodeploy", "nok8s"}
	ImageTags   = []string{"nodeploy"}
)

// BuildBinary builds ./cmd/drmfilter as a static, reproducible linux binary:
// CGO_ENABLED=0, -trimpath, stripped, with the version stamped by -ldflags -X.
func BuildBinary(ctx context.Context, o BuildOptions) error {
	if err := CheckArch(o.Arch); err != nil {
		return err
	}
	if o.Version == "" {
		return errors.New("build drmfilter: no version given")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build drmfilter: %w", err)
	}
	out, err := filepath.Abs(o.Output)
	if err != nil {
		return fmt.Errorf("build drmfilter: %w", err)
	}
	ldflags := "-s -w -X " + Module + "/internal/version.Version=" + o.Version
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags}
	if len(o.Tags) > 0 {
		args = append(args, "-tags", strings.Join(o.Tags, ","))
	}
	cmd := exec.CommandContext(ctx, goTool, append(args, "-o", out, "./cmd/drmfilter")...)
	cmd.Dir = o.RepoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build drmfilter for linux/%s: %w\n%s", o.Arch, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// FindRepo returns the drmfilter checkout that contains dir: the nearest
// parent holding a go.mod of module Module.
func FindRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			if first, _, _ := strings.Cut(string(data), "\n"); strings.TrimSpace(first) == "module "+Module {
				return d, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find the drmfilter checkout: %w", err)
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("find the drmfilter checkout: no go.mod of %s in %s or its parents", Module, dir)
		}
	}
}
