// Command mkdist builds drmfilter's release artifacts: the .deb and .rpm
// packages and the agent's container image (a `docker save`-style tarball),
// for linux/amd64 or linux/arm64. It is a build tool, not part of the
// drmfilter binary:
//
//	go run ./cmd/mkdist deb|rpm|image|all [--version V] [--arch amd64|arm64] [--out dist/] [--binary PATH]
//
// Without --binary it first builds the static agent (CGO_ENABLED=0,
// -trimpath, version stamped with -ldflags -X) into the output directory.
// Without --version the version is 0.0.0-dev+g<commit>. File times come from
// SOURCE_DATE_EPOCH when it is set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/drmfilter/drmfilter/internal/dist"
	"github.com/drmfilter/drmfilter/internal/dist/image"
	"github.com/drmfilter/drmfilter/internal/dist/pkg"
)

const usage = `usage: go run ./cmd/mkdist deb|rpm|image|all [flags]

Builds drmfilter's .deb, .rpm and container image tarball into --out.

flags:
`

type options struct {
	target  string
	version string
	arch    string
	out     string
	binary  string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "mkdist:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "mkdist:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ error }

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("mkdist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.version, "version", "", "version to stamp and package (semantic, e.g. v1.2.3; default 0.0.0-dev+g<commit>)")
	fs.StringVar(&o.arch, "arch", "amd64", "target architecture: amd64 or arm64")
	fs.StringVar(&o.out, "out", "dist", "output directory")
	fs.StringVar(&o.binary, "binary", "", "package this drmfilter binary instead of building one")
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		fs.Usage()
		return o, usageError{errors.New("no target given (deb, rpm, image or all)")}
	}
	o.target = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	switch o.target {
	case "deb", "rpm", "image", "all":
	default:
		return o, usageError{fmt.Errorf("unknown target %q (want deb, rpm, image or all)", o.target)}
	}
	if err := dist.CheckArch(o.arch); err != nil {
		return o, usageError{err}
	}
	if o.version != "" {
		if err := dist.CheckVersion(o.version); err != nil {
			return o, usageError{err}
		}
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	repo, err := dist.FindRepo(".")
	if err != nil {
		return err
	}
	if o.version == "" {
		o.version = dist.DefaultVersion(ctx, repo)
	}
	created, err := sourceDate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}

	// The packages and the image get binaries of their own build tags
	// (dist.PackageTags, dist.ImageTags) unless --binary names one for both.
	build := func(flavour string, tags []string) (string, error) {
		if o.binary != "" {
			return o.binary, nil
		}
		binary := filepath.Join(o.out, "drmfilter_"+flavour+"_linux_"+o.arch)
		fmt.Fprintf(stdout, "building %s (drmfilter %s, linux/%s, tags %s)\n", binary, o.version, o.arch, strings.Join(tags, ","))
		return binary, dist.BuildBinary(ctx, dist.BuildOptions{RepoDir: repo, Version: o.version, Arch: o.arch, Output: binary, Tags: tags})
	}

	formats := map[string][]string{"deb": {"deb"}, "rpm": {"rpm"}, "all": pkg.Formats}[o.target]
	if len(formats) > 0 {
		binary, err := build("package", dist.PackageTags)
		if err != nil {
			return err
		}
		for _, f := range formats {
			path, err := pkg.Build(pkg.Options{RepoDir: repo, Binary: binary, Version: o.version, Arch: o.arch, Format: f, OutDir: o.out})
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, "wrote", path)
		}
	}
	if o.target == "image" || o.target == "all" {
		binary, err := build("image", dist.ImageTags)
		if err != nil {
			return err
		}
		img, err := image.Build(image.Options{RepoDir: repo, Binary: binary, Version: o.version, Arch: o.arch, Created: created})
		if err != nil {
			return err
		}
		path := filepath.Join(o.out, fmt.Sprintf("drmfilter_%s_linux_%s.image.tar", dist.ImageTag(o.version), o.arch))
		if err := image.Write(path, img, o.version); err != nil {
			return err
		}
		tag, _ := image.Tag(o.version)
		fmt.Fprintf(stdout, "wrote %s (%s; load it with docker load -i or podman load -i)\n", path, tag)
	}
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH when set (reproducible builds), else now,
// to the second.
func sourceDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}
