package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// ReadPaths reads policy files. A directory contributes its *.yaml and
// *.yml files (not its subdirectories), in name order, skipping names that
// start with "." (which also skips the ..data machinery of a Kubernetes
// ConfigMap volume while following its symlinks).
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
			if fi, err := os.Stat(full); err != nil || fi.IsDir() {
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

func readFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return Source{}, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return Source{}, fmt.Errorf("read policy %s: %w", path, err)
	}
	if len(data) > maxPolicyFile {
		return Source{}, fmt.Errorf("read policy %s: larger than %d MiB; is this a policy file?", path, maxPolicyFile>>20)
	}
	return Source{Name: path, Data: data}, nil
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
