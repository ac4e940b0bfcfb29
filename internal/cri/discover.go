package cri

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// wellKnown are the CRI sockets Discover looks for, in the order it returns
// them: containerd, CRI-O, k3s, microk8s, k0s, cri-dockerd.
var wellKnown = [...]string{
	"/run/containerd/containerd.sock",
	"/var/run/crio/crio.sock",
	"/run/k3s/containerd/containerd.sock",
	"/var/snap/microk8s/common/run/containerd.sock",
	"/run/k0s/containerd.sock",
	"/run/cri-dockerd.sock",
}

// WellKnownSockets returns the socket paths Discover looks for, in its
// order: containerd, CRI-O, k3s, microk8s, k0s, cri-dockerd.
func WellKnownSockets() []string { return append([]string(nil), wellKnown[:]...) }

// maxSymlinks bounds symbolic link resolution, as the kernel's MAXSYMLINKS.
const maxSymlinks = 40

// Discover returns the well-known runtime sockets that exist under root
// ("/" on a host, "/host" in a pod that mounts the host there), as paths to
// dial (root joined with the socket path after resolving symbolic links
// inside root). A path that resolves to one already found (a /var/run that
// links to /run) is returned once. Only Unix sockets count.
func Discover(root string) []string {
	var out []string
	seen := make(map[string]bool, len(wellKnown))
	for _, p := range wellKnown {
		rel, err := resolveIn(root, p)
		if err != nil {
			continue
		}
		full := filepath.Join(root, rel)
		fi, err := os.Lstat(full)
		if err != nil || fi.Mode().Type() != fs.ModeSocket || seen[full] {
			continue
		}
		seen[full] = true
		out = append(out, full)
	}
	return out
}

var errTooManyLinks = errors.New("too many levels of symbolic links")

// resolveIn resolves the symbolic links in the absolute path p as if root
// were "/": absolute link targets are taken relative to root and ".." never
// climbs above it, as chroot would. It returns the resolved absolute path
// inside root. The last component must exist; it is resolved too.
func resolveIn(root, p string) (string, error) {
	todo := strings.Split(strings.TrimPrefix(path.Clean(p), "/"), "/")
	done := "/"
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, name)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if fi.Mode().Type() != fs.ModeSymlink {
			done = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: errTooManyLinks}
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return done, nil
}
