// Package pkg builds drmfilter's Linux packages, a .deb and an .rpm, with
// nfpm used as a library (github.com/goreleaser/nfpm/v2, its deb and rpm
// packagers).
//
// Both packages hold the same files (see Contents): the static binary, the
// systemd unit, the agent's configuration and a harmless default policy as
// configuration files that upgrades never overwrite, the example policies as
// documentation, and the audit log directory. The maintainer scripts in
// scripts/ are shared by both formats and tell deb from rpm arguments.
//
// Files: pkg.go (metadata, contents, Build), scripts/*.sh (maintainer
// scripts, embedded).
package pkg

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"

	"github.com/drmfilter/drmfilter/internal/dist"
)

// Package metadata shared by both formats.
const (
	Name        = "drmfilter"
	Maintainer  = "drmfilter maintainers <maintainers@drmfilter.dev>"
	Summary     = "file-protection agent: fanotify permission events answered by policy"
	Description = Summary + "\n" +
		"drmfilter decides every open and exec of the files its policies protect,\n" +
		"by program, user, container and Kubernetes pod, and records its decisions\n" +
		"in an audit log. The package installs the agent as a systemd service with\n" +
		"an audit-only default policy; example policies are in\n" +
		"/usr/share/drmfilter/examples."
)

// Paths on the installed system.
const (
	BinaryPath    = "/usr/bin/drmfilter"
	UnitPath      = "/usr/lib/systemd/system/drmfilter.service"
	ConfigPath    = "/etc/drmfilter/config.yaml"
	PolicyDir     = "/etc/drmfilter/policies"
	ExamplesDir   = "/usr/share/drmfilter/examples"
	AuditLogDir   = "/var/log/drmfilter"
	DefaultPolicy = PolicyDir + "/default.yaml"
)

// Formats lists the package formats Build writes.
var Formats = []string{"deb", "rpm"}

//go:embed scripts/*.sh
var scripts embed.FS

// Options says which package Build writes.
type Options struct {
	// RepoDir is the drmfilter checkout: deploy/systemd/ and examples/ are
	// read from it.
	RepoDir string
	// Binary is the static drmfilter binary to package.
	Binary string
	// Version is the package version (semantic; a leading v is dropped).
	Version string
	// Arch is the GOARCH of Binary (amd64 or arm64).
	Arch string
	// Format is deb or rpm.
	Format string
	// OutDir is where the package is written, under its conventional name.
	OutDir string
}

// Contents lists the files of the package built from repoDir and binary.
//
// The unit goes to /usr/lib/systemd/system, not /lib/systemd/system: on
// merged-/usr systems (Debian 12+, Ubuntu 22.04+, RHEL 9) /lib is a symlink,
// and Debian asks packages to ship under /usr so that dpkg's file database
// does not alias; systemd reads both directories on the others.
//
// Only deploy/systemd/policies/default.yaml (audit mode, protects nothing a
// program could be denied) goes to /etc/drmfilter/policies; the examples
// deny, and would lock programs out of real paths (/srv/finance, secret
// volumes, /etc/ssh host keys), so they are documentation only.
func Contents(repoDir, binary string) (files.Contents, error) {
	sys := filepath.Join(repoDir, "deploy", "systemd")
	c := files.Contents{
		{Source: binary, Destination: BinaryPath, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: filepath.Join(sys, "drmfilter.service"), Destination: UnitPath, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: "/etc/drmfilter", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: filepath.Join(sys, "config.yaml"), Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: PolicyDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Source: filepath.Join(sys, "policies", "default.yaml"), Destination: DefaultPolicy, Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		{Destination: AuditLogDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o700}},
	}
	examples, err := filepath.Glob(filepath.Join(repoDir, "examples", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("list example policies: %w", err)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("list example policies: none in %s", filepath.Join(repoDir, "examples"))
	}
	sort.Strings(examples)
	for _, e := range examples {
		c = append(c, &files.Content{Source: e, Destination: ExamplesDir + "/" + filepath.Base(e), FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	for _, f := range c {
		if f.Source == "" {
			continue
		}
		if _, err := os.Stat(f.Source); err != nil {
			return nil, fmt.Errorf("package content for %s: %w", f.Destination, err)
		}
	}
	return c, nil
}

// Build writes the package o describes into o.OutDir and returns its path.
func Build(o Options) (string, error) {
	if err := dist.CheckArch(o.Arch); err != nil {
		return "", err
	}
	if err := dist.CheckVersion(o.Version); err != nil {
		return "", err
	}
	var packager nfpm.Packager
	switch o.Format {
	case "deb":
		packager = deb.Default
	case "rpm":
		packager = rpm.DefaultRPM
	default:
		return "", fmt.Errorf("unknown package format %q (want deb or rpm)", o.Format)
	}
	contents, err := Contents(o.RepoDir, o.Binary)
	if err != nil {
		return "", err
	}
	scriptDir, err := os.MkdirTemp("", "drmfilter-pkg-scripts-")
	if err != nil {
		return "", fmt.Errorf("write maintainer scripts: %w", err)
	}
	defer os.RemoveAll(scriptDir)
	script := func(name string) (string, error) {
		data, err := scripts.ReadFile("scripts/" + name)
		if err != nil {
			return "", err
		}
		p := filepath.Join(scriptDir, name)
		return p, os.WriteFile(p, data, 0o755)
	}
	var sc nfpm.Scripts
	for _, s := range []struct {
		name string
		dst  *string
	}{{"postinstall.sh", &sc.PostInstall}, {"preremove.sh", &sc.PreRemove}, {"postremove.sh", &sc.PostRemove}} {
		if *s.dst, err = script(s.name); err != nil {
			return "", fmt.Errorf("write maintainer script %s: %w", s.name, err)
		}
	}

	info := nfpm.WithDefaults(&nfpm.Info{
		Name:        Name,
		Arch:        o.Arch,
		Platform:    "linux",
		Version:     o.Version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  Maintainer,
		Description: Description,
		Vendor:      "drmfilter",
		Homepage:    dist.Repository,
		License:     dist.License,
		Overridables: nfpm.Overridables{
			Contents: contents,
			Scripts:  sc,
			RPM: nfpm.RPM{
				Summary:  Summary,
				Group:    "System Environment/Daemons",
				Packager: Maintainer,
			},
		},
	})
	// Every file gets the package's time (SOURCE_DATE_EPOCH when set), so
	// the same inputs give the same package.
	for _, c := range info.Contents {
		c.FileInfo.MTime = info.MTime
	}
	if err := info.Validate(); err != nil {
		return "", fmt.Errorf("package %s: %w", o.Format, err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("package %s: %w", o.Format, err)
	}
	path := filepath.Join(o.OutDir, packager.ConventionalFileName(info))
	if err := writePackage(packager, info, path); err != nil {
		return "", fmt.Errorf("package %s: %w", o.Format, err)
	}
	return path, nil
}

// writePackage writes the package to a temporary file next to path and
// renames it into place, so that a failed build leaves no partial package.
func writePackage(packager nfpm.Packager, info *nfpm.Info, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := packager.Package(info, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
