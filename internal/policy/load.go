package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Resolver turns user and group names into ids. Load uses the host's
// account database (os/user) unless LoadOptions gives another.
type Resolver interface {
	LookupUser(name string) (uint32, error)
	LookupGroup(name string) (uint32, error)
}

// LoadOptions tune Load.
type LoadOptions struct {
	// Resolver resolves user and group names; nil means the host's.
	Resolver Resolver
}

// Source is one policy file's content.
type Source struct {
	Name string // shown in errors: a path, or "<stdin>"
	Data []byte
}

// Set is a validated set of policies, ready to compile.
type Set struct {
	Policies []*Policy // sorted by name
	Files    []string  // the files they came from, in load order
	// Hash is "sha256:<hex>" of the sources' base names and contents, in
	// load order: the same files give the same hash wherever they are, so a
	// ConfigMap's keys and the files of its mounted volume hash alike.
	Hash string

	// opPos is where the rules write the operations that some backend
	// does not mediate, for Unsupported to point at.
	opPos []opPos
}

// Rules is the number of rules in the set.
func (s *Set) Rules() int {
	n := 0
	for _, p := range s.Policies {
		n += len(p.Spec.Rules)
	}
	return n
}

// maxPolicyFile bounds one policy file, so a wrong path (a disk image, a
// log) fails clearly instead of being read whole.
const maxPolicyFile = 16 << 20

// ErrNotRegular is matched (errors.Is) by the error for a policy path that
// is not a regular file once its symlinks are followed: a named pipe, a
// socket or a device. Such a file is refused without reading it (a named
// pipe would block the reader until someone writes to it).
var ErrNotRegular = errors.New("not a regular file")

// ReadPaths reads policy files. A directory contributes its *.yaml and
// *.yml files (not its subdirectories), in name order, skipping names that
// start with "." (which also skips the ..data machinery of a Kubernetes
// ConfigMap volume while following its symlinks).
//
// Reading never blocks on a file: a path, or a *.yaml or *.yml entry of a
// directory, that is a named pipe, a socket or a device is an error
// matching ErrNotRegular, and the whole read fails, as for any bad policy
// file. Such an entry is not skipped: its name says it is meant as a
// policy, and leaving it out would load a policy set without it.
func ReadPaths(paths []string) ([]Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("no policy path given")
	}
	var out []Source
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read policy: %w", err)
		}
		if !fi.IsDir() {
			src, err := readFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("read policy directory: %w", err)
		}
		found := 0
		for _, e := range entries {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
				continue
			}
			full := filepath.Join(p, name)
			fi, err := os.Stat(full)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // removed meanwhile, or a dangling symlink
			case err != nil:
				return nil, fmt.Errorf("read policy: %w", err)
			case fi.IsDir():
				continue
			}
			src, err := readFile(full)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("read policy directory %s: no policy files (*.yaml, *.yml)", p)
		}
	}
	return out, nil
}

// readFile reads one policy file without ever blocking on it. The path's
// symlinks are resolved first (a ConfigMap volume's files are symlinks
// through ..data), and the file they lead to must be a regular file:
// checked before opening, so that a device is never opened, and again on
// the opened descriptor, which is opened non-blocking and without
// following a symlink, so that a file swapped in between is refused too.
func readFile(path string) (Source, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Source{}, fmt.Errorf("read policy: %w", err)
	}
	named := path
	if target != path {
		named = fmt.Sprintf("%s (-> %s)", path, target)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return Source{}, fmt.Errorf("read policy: %w", err)
	}
	if err := checkRegular(named, fi); err != nil {
		return Source{}, err
	}
	f, err := os.OpenFile(target, os.O_RDONLY|openNoBlock, 0)
	if err != nil {
		return Source{}, fmt.Errorf("read policy %s: %w", named, err)
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return Source{}, fmt.Errorf("read policy %s: %w", named, err)
	}
	if err := checkRegular(named, ofi); err != nil {
		return Source{}, err
	}
	if ofi.Size() > maxPolicyFile {
		return Source{}, tooLarge(named)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return Source{}, fmt.Errorf("read policy %s: %w", named, err)
	}
	if len(data) > maxPolicyFile {
		return Source{}, tooLarge(named)
	}
	return Source{Name: path, Data: data}, nil
}

// checkRegular refuses anything but a regular file, naming what it is.
func checkRegular(named string, fi fs.FileInfo) error {
	mode := fi.Mode()
	if mode.IsRegular() {
		return nil
	}
	what := fmt.Sprintf("of type %v", mode.Type())
	switch {
	case mode&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case mode&fs.ModeSocket != 0:
		what = "a socket"
	case mode&fs.ModeCharDevice != 0:
		what = "a character device"
	case mode&fs.ModeDevice != 0:
		what = "a block device"
	case mode.IsDir():
		what = "a directory"
	case mode&fs.ModeSymlink != 0:
		what = "a symlink" // swapped in after the path was resolved
	}
	return fmt.Errorf("read policy %s: %w: it is %s; a policy must be a regular file", named, ErrNotRegular, what)
}

func tooLarge(named string) error {
	return fmt.Errorf("read policy %s: larger than %d MiB; is this a policy file?", named, maxPolicyFile>>20)
}

// LoadPaths reads and loads policy files and directories (see ReadPaths).
func LoadPaths(paths []string, opts LoadOptions) (*Set, error) {
	srcs, err := ReadPaths(paths)
	if err != nil {
		return nil, err
	}
	return Load(srcs, opts)
}

// Load parses and validates every document of every source. It is
// all-or-nothing: if any document is invalid it returns an ErrorList with
// every problem found, and no Set.
func Load(srcs []Source, opts LoadOptions) (*Set, error) {
	res := opts.Resolver
	if res == nil {
		res = hostResolver{}
	}
	set := &Set{}
	var errs ErrorList
	h := sha256.New()
	alloc := newSetAlloc()
	for _, src := range srcs {
		set.Files = append(set.Files, src.Name)
		var n [8]byte
		base := filepath.Base(src.Name)
		binary.LittleEndian.PutUint64(n[:], uint64(len(base)))
		h.Write(n[:])
		h.Write([]byte(base))
		binary.LittleEndian.PutUint64(n[:], uint64(len(src.Data)))
		h.Write(n[:])
		h.Write(src.Data)

		ps, perrs := parseDocuments(src.Name, src.Data, alloc)
		errs = append(errs, perrs...)
		set.Policies = append(set.Policies, ps...)
	}
	errs = append(errs, validateSet(set.Policies, res)...)
	if len(errs) > 0 {
		return nil, errs
	}
	if len(set.Policies) == 0 {
		return nil, ErrorList{{File: strings.Join(set.Files, ", "), Msg: "no ProtectionPolicy documents found"}}
	}
	slices.SortFunc(set.Policies, func(a, b *Policy) int { return strings.Compare(a.Name, b.Name) })
	set.Hash = "sha256:" + hex.EncodeToString(h.Sum(nil))
	set.opPos = slices.Clip(alloc.opPos)
	return set, nil
}

// hostResolver resolves names through the host's account database.
type hostResolver struct{}

func (hostResolver) LookupUser(name string) (uint32, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(id), err
}

func (hostResolver) LookupGroup(name string) (uint32, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	id, err := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(id), err
}
