package environ

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Read limits: sysfs attributes are a page at most; /proc files such as
// cpuinfo or mountinfo can be large on big machines, but what we need is near
// the start or is bounded.
const (
	smallFile = 4 << 10
	largeFile = 4 << 20
)

// sysReader reads files below the root and records every problem other than
// a missing file, which is an ordinary answer ("this signal is absent").
type sysReader struct {
	fsys     fs.FS
	problems []Problem
}

// rel turns an absolute machine path into a path valid for fs.FS.
func rel(p string) string {
	r := strings.TrimPrefix(path.Clean("/"+p), "/")
	if r == "" {
		return "."
	}
	return r
}

func (r *sysReader) note(p string, err error) {
	r.problems = append(r.problems, Problem{Path: "/" + rel(p), Error: err.Error()})
}

// read returns at most limit bytes of the file at p. A missing file gives
// fs.ErrNotExist and no problem; any other failure is recorded.
func (r *sysReader) read(p string, limit int64) ([]byte, error) {
	f, err := r.fsys.Open(rel(p))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.note(p, fmt.Errorf("open: %w", err))
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		r.note(p, fmt.Errorf("read: %w", err))
		return b, err
	}
	return b, nil
}

// line returns the first line of a small file, trimmed. Content that is not
// printable text is cleaned and recorded as a problem.
func (r *sysReader) line(p string) string {
	b, err := r.read(p, smallFile)
	if err != nil && len(b) == 0 {
		return ""
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	s, clean := printable(b)
	if !clean {
		r.note(p, errors.New("garbage: content is not printable text, kept the printable part"))
	}
	return s
}

// printable trims b and drops NULs; it reports whether anything else
// unprintable had to be dropped.
func printable(b []byte) (string, bool) {
	b = bytes.TrimRight(b, "\x00")
	clean := true
	if !utf8.Valid(b) || bytes.ContainsFunc(b, func(r rune) bool { return !unicode.IsPrint(r) && r != '\t' }) {
		clean = false
		b = bytes.Map(func(r rune) rune {
			if r == utf8.RuneError || (!unicode.IsPrint(r) && r != '\t') {
				return -1
			}
			return r
		}, b)
	}
	return strings.TrimSpace(string(b)), clean
}

// exists reports whether p exists; failures other than "not there" are
// recorded and count as absent.
func (r *sysReader) exists(p string) bool {
	_, err := fs.Stat(r.fsys, rel(p))
	if err == nil {
		return true
	}
	if !errors.Is(err, fs.ErrNotExist) {
		r.note(p, fmt.Errorf("stat: %w", err))
	}
	return false
}

// dir lists a directory; a missing one gives nil without a problem.
func (r *sysReader) dir(p string) []fs.DirEntry {
	ents, err := fs.ReadDir(r.fsys, rel(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.note(p, fmt.Errorf("list: %w", err))
	}
	return ents
}

// readlink returns the target of a symbolic link, or "" when p is not one.
func (r *sysReader) readlink(p string) string {
	t, err := fs.ReadLink(r.fsys, rel(p))
	if err != nil {
		return ""
	}
	return t
}
