// Package image builds the drmfilter agent's container image without a
// container engine, with go-containerregistry, and writes it as a
// `docker save`-style tarball (docker load, podman load and skopeo's
// docker-archive: transport read it).
//
// The image matches deploy/image/Containerfile: one layer over scratch with
// the static binary at /usr/bin/drmfilter and a minimal /etc/passwd and
// /etc/group (root and nobody, from deploy/image/etc/) so that user and group
// names in policies resolve and tools that print users work; ENTRYPOINT is
// the binary and CMD is empty (the DaemonSet passes the arguments); it runs
// as root, which fanotify needs. Labels follow the OCI image spec
// annotations. Layer timestamps come from Options.Created, so the same inputs
// give the same image.
//
// Files: image.go (Build, Write, Labels).
package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drmfilter/drmfilter/internal/dist"
)

// Repository is where the image is published; tags are versions.
const Repository = "ghcr.io/drmfilter/drmfilter"

// BinaryPath is where the agent lives in the image; Entrypoint runs it.
const BinaryPath = "/usr/bin/drmfilter"

// Entrypoint is the image's ENTRYPOINT (CMD stays empty).
var Entrypoint = []string{BinaryPath}

// Options says which image Build makes.
type Options struct {
	// RepoDir is the drmfilter checkout: deploy/image/etc/ is read from it.
	RepoDir string
	// Binary is the static drmfilter binary for Arch.
	Binary string
	// Version is the agent's version: the version label and the tag.
	Version string
	// Arch is the GOARCH of Binary (amd64 or arm64).
	Arch string
	// Created is the image's creation time and every file's mtime.
	Created time.Time
}

// Labels returns the image's OCI labels for version.
func Labels(version string) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "drmfilter",
		"org.opencontainers.image.description": "drmfilter file-protection agent (fanotify permission events answered by policy)",
		"org.opencontainers.image.source":      dist.Repository,
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.licenses":    dist.License,
	}
}

// Tag is the image reference Write records for version.
func Tag(version string) (name.Tag, error) {
	return name.NewTag(Repository + ":" + dist.ImageTag(version))
}

// Build makes the image o describes.
func Build(o Options) (v1.Image, error) {
	if err := dist.CheckArch(o.Arch); err != nil {
		return nil, err
	}
	layerTar, err := rootfs(o)
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "drmfilter mkdist image", Comment: "static drmfilter binary, /etc/passwd, /etc/group"},
	})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = o.Arch
	cfg.Created = v1.Time{Time: o.Created}
	cfg.Config.Entrypoint = Entrypoint
	cfg.Config.Cmd = nil
	cfg.Config.User = "0:0"
	cfg.Config.Env = []string{"PATH=/usr/bin"}
	cfg.Config.Labels = Labels(o.Version)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return img, nil
}

// Write writes img as a `docker save`-style tarball at path, tagged with
// Tag(version).
func Write(path string, img v1.Image, version string) error {
	tag, err := Tag(version)
	if err != nil {
		return fmt.Errorf("image tag: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write image: %w", err)
	}
	tmp := path + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image: %w", err)
	}
	return nil
}

// rootfs returns the image's single layer as an uncompressed tar.
func rootfs(o Options) ([]byte, error) {
	etc := filepath.Join(o.RepoDir, "deploy", "image", "etc")
	entries := []struct {
		name string // path in the image, without the leading slash
		src  string // file to copy, empty for a directory
		mode int64
	}{
		{"etc/", "", 0o755},
		{"etc/group", filepath.Join(etc, "group"), 0o644},
		{"etc/passwd", filepath.Join(etc, "passwd"), 0o644},
		{"usr/", "", 0o755},
		{"usr/bin/", "", 0o755},
		{BinaryPath[1:], o.Binary, 0o755},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: o.Created, Format: tar.FormatPAX}
		var data []byte
		if e.src == "" {
			hdr.Typeflag = tar.TypeDir
		} else {
			var err error
			if data, err = os.ReadFile(e.src); err != nil {
				return nil, err
			}
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
