package mountinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of /proc/PID/mountinfo. Field numbers refer to proc(5).
type Mount struct {
	// ID is the mount's unique ID within the mount namespace (field 1). IDs
	// may be reused after an unmount; they are unique within one snapshot.
	ID int
	// ParentID is the ID of the parent mount (field 2): the mount this one is
	// attached to. For the root of the namespace, or a mount whose parent is
	// outside the process's root (chroot, pivot_root), the parent is not in
	// the table; the root mount can even be its own parent.
	ParentID int
	// Major is the major device number of st_dev for files on this
	// filesystem (field 3). Zero for filesystems without a block device
	// (tmpfs, proc, NFS, FUSE, overlay, btrfs, which uses anonymous devices).
	Major uint32
	// Minor is the minor device number of st_dev (field 3).
	Minor uint32
	// Root is the pathname of the directory in the filesystem that forms the
	// root of this mount (field 4), octal escapes decoded. "/" for an
	// ordinary mount; a deeper path for a bind mount of a subtree or a btrfs
	// subvolume; "mnt:[4026532862]"-style names for nsfs.
	Root string
	// MountPoint is where the mount is attached, relative to the reading
	// process's root directory (field 5), octal escapes decoded. Always
	// absolute.
	MountPoint string
	// Options are the per-mount options (field 6), comma separated, as
	// written: "rw,nosuid,nodev,relatime". Use Option to test for one.
	Options string
	// Optional holds the optional fields (field 7), zero or more
	// "tag[:value]" words, as written. The known ones are also decoded into
	// Shared, Master, PropagateFrom and Unbindable; unknown tags are kept
	// here and otherwise ignored, as proc(5) asks of parsers.
	Optional []string
	// Shared is the peer group N of "shared:N": the mount shares
	// propagation events with its peers. Zero when absent.
	Shared int
	// Master is the peer group N of "master:N": the mount is a slave that
	// receives propagation from that group. Zero when absent.
	Master int
	// PropagateFrom is N of "propagate_from:N": the closest dominant peer
	// group this slave receives from, shown when the master is not visible
	// from the process's root. Zero when absent.
	PropagateFrom int
	// Unbindable is true when the "unbindable" tag is present.
	Unbindable bool
	// FSType is the filesystem type (field 9), "type" or "type.subtype":
	// "ext4", "nfs4", "fuse.sshfs". See BaseType and Subtype.
	FSType string
	// Source is the filesystem-specific mount source (field 10), octal
	// escapes decoded: "/dev/sda1", "server:/export", "//host/share",
	// "tmpfs", or "none". It can be empty.
	Source string
	// SuperOptions are the per-superblock options (field 11), as written:
	// "rw,vers=4.1,addr=10.0.0.5". Use SuperOption to read one.
	SuperOptions string
}

// BindSubtree reports whether the mount shows a subtree of its filesystem
// rather than the filesystem's root: Root is not "/". That is the mark of a
// bind mount of a directory or a file (mount --bind /a/b /c); btrfs
// subvolume mounts (Root "/@home") look the same and are included. A bind
// of a whole filesystem has Root "/" and cannot be told from the original
// by its own line: compare Major:Minor with other mounts for that.
func (m *Mount) BindSubtree() bool { return m.Root != "/" }

// BaseType returns the filesystem type without its subtype: "fuse" for
// "fuse.sshfs", "ext4" for "ext4".
func (m *Mount) BaseType() string {
	if i := strings.IndexByte(m.FSType, '.'); i >= 0 {
		return m.FSType[:i]
	}
	return m.FSType
}

// Subtype returns the part of FSType after the first dot ("sshfs" for
// "fuse.sshfs"), or "" when there is none.
func (m *Mount) Subtype() string {
	if i := strings.IndexByte(m.FSType, '.'); i >= 0 {
		return m.FSType[i+1:]
	}
	return ""
}

// ReadOnly reports whether the mount is read-only: per-mount option "ro".
func (m *Mount) ReadOnly() bool { return m.Option("ro") }

// Option reports whether the per-mount options (field 6) contain name as a
// whole word. It does not allocate.
func (m *Mount) Option(name string) bool {
	_, ok := lookupOption(m.Options, name)
	return ok
}

// SuperOption returns the value of key in the superblock options (field
// 11): SuperOption("addr") is "10.0.0.5" for "rw,vers=4.1,addr=10.0.0.5".
// A flag without "=" is found with an empty value. It does not allocate.
func (m *Mount) SuperOption(key string) (string, bool) {
	return lookupOption(m.SuperOptions, key)
}

// lookupOption finds key in a comma-separated option list, either as a bare
// word or as "key=value".
func lookupOption(opts, key string) (string, bool) {
	for opts != "" {
		var opt string
		if i := strings.IndexByte(opts, ','); i >= 0 {
			opt, opts = opts[:i], opts[i+1:]
		} else {
			opt, opts = opts, ""
		}
		if len(opt) < len(key) || opt[:len(key)] != key {
			continue
		}
		if len(opt) == len(key) {
			return "", true
		}
		if opt[len(key)] == '=' {
			return opt[len(key)+1:], true
		}
	}
	return "", false
}

// ErrMalformed is matched (errors.Is) by a *ParseError: some lines of the
// input were not mountinfo lines and were skipped.
var ErrMalformed = errors.New("malformed mountinfo")

// LineError describes one skipped line.
type LineError struct {
	// Line is the 1-based line number in the input.
	Line int
	// Reason says what was wrong, e.g. "no \"-\" separator".
	Reason string
	// Text is the start of the offending line (at most 120 bytes), for the
	// log; it may be cut in the middle of a character.
	Text string
}

func (e LineError) Error() string {
	return fmt.Sprintf("line %d: %s: %q", e.Line, e.Reason, e.Text)
}

// maxLineErrors bounds how many LineErrors a ParseError keeps, so that a
// hostile or garbage input cannot make the error grow without limit.
const maxLineErrors = 64

// maxLineLen is the longest line Parse accepts. Real lines reach tens of
// kilobytes (overlay lowerdir lists); longer ones are skipped as malformed.
const maxLineLen = 1 << 20

// ParseError is returned by Parse, next to the mounts that did parse, when
// some lines were skipped. It matches ErrMalformed.
type ParseError struct {
	// Lines are the first skipped lines, in input order (at most 64).
	Lines []LineError
	// Skipped counts every skipped line, including those not in Lines.
	Skipped int
}

func (e *ParseError) Error() string {
	if len(e.Lines) == 0 {
		return fmt.Sprintf("mountinfo: %d malformed lines skipped", e.Skipped)
	}
	return fmt.Sprintf("mountinfo: %d malformed lines skipped, first %s", e.Skipped, e.Lines[0].Error())
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func (e *ParseError) add(line int, reason, text string) {
	e.Skipped++
	if len(e.Lines) >= maxLineErrors {
		return
	}
	if len(text) > 120 {
		text = text[:120]
	}
	e.Lines = append(e.Lines, LineError{Line: line, Reason: reason, Text: text})
}

// Parse reads mountinfo lines from r. It returns every well-formed mount in
// input order. Malformed lines are skipped; if there were any, the error is a
// *ParseError (errors.Is(err, ErrMalformed)) and the returned mounts are
// still valid. An I/O error from r stops parsing and is returned wrapped,
// also with the mounts parsed so far. Empty lines are ignored.
func Parse(r io.Reader) ([]Mount, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		mounts []Mount
		perr   ParseError
	)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br)
		if tooLong {
			perr.add(lineNo, fmt.Sprintf("line longer than %d bytes", maxLineLen), string(line[:min(len(line), 120)]))
		} else if s := trimEOL(line); s != "" {
			m, reason := parseLine(s)
			if reason != "" {
				perr.add(lineNo, reason, s)
			} else {
				mounts = append(mounts, m)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return mounts, fmt.Errorf("read mountinfo line %d: %w", lineNo, err)
		}
	}
	if perr.Skipped > 0 {
		return mounts, &perr
	}
	return mounts, nil
}

// readLine returns the next line, newline included, and the reader's error
// (io.EOF after the last line). A line longer than maxLineLen is consumed to
// its end and reported tooLong, with its first bytes. The returned slice is
// only valid until the next call.
func readLine(br *bufio.Reader) (line []byte, tooLong bool, err error) {
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && len(long)+len(chunk) > maxLineLen {
			tooLong = true
			if len(long) == 0 {
				long = append(long, chunk[:min(len(chunk), 120)]...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				long = append(long, chunk...)
			}
			continue
		}
		if long == nil {
			return chunk, false, err
		}
		if !tooLong {
			long = append(long, chunk...)
		}
		return long, tooLong, err
	}
}

// trimEOL converts a line to a string without its "\n" or "\r\n".
func trimEOL(b []byte) string {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return string(b)
}

// parseLine parses one line without its newline. It returns a non-empty
// reason when the line is malformed.
func parseLine(s string) (Mount, string) {
	var m Mount
	// Fields are separated by single spaces; an empty field (an empty mount
	// source is written as nothing) is legal, so strings.Fields would be
	// wrong here.
	fields := strings.Split(s, " ")
	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}
	if len(fields) < 10 {
		return m, fmt.Sprintf("%d fields, want at least 10", len(fields))
	}
	if sep < 0 {
		return m, `no "-" separator after field 6`
	}
	if n := len(fields) - sep - 1; n != 3 {
		return m, fmt.Sprintf("%d fields after \"-\", want 3", n)
	}

	var ok bool
	if m.ID, ok = parseInt(fields[0]); !ok {
		return m, "bad mount ID " + strconv.Quote(trim(fields[0]))
	}
	if m.ParentID, ok = parseInt(fields[1]); !ok {
		return m, "bad parent ID " + strconv.Quote(trim(fields[1]))
	}
	maj, min, found := strings.Cut(fields[2], ":")
	if !found {
		return m, "bad major:minor " + strconv.Quote(trim(fields[2]))
	}
	if m.Major, ok = parseUint32(maj); !ok {
		return m, "bad major " + strconv.Quote(trim(maj))
	}
	if m.Minor, ok = parseUint32(min); !ok {
		return m, "bad minor " + strconv.Quote(trim(min))
	}
	if fields[3] == "" {
		return m, "empty root"
	}
	m.Root = unescape(fields[3])
	if !strings.HasPrefix(fields[4], "/") {
		return m, "mount point not absolute: " + strconv.Quote(trim(fields[4]))
	}
	m.MountPoint = unescape(fields[4])
	if fields[5] == "" {
		return m, "empty mount options"
	}
	m.Options = fields[5]
	if sep > 6 {
		m.Optional = fields[6:sep:sep]
		for _, f := range m.Optional {
			if reason := m.setOptional(f); reason != "" {
				return Mount{}, reason
			}
		}
	}
	if fields[sep+1] == "" {
		return Mount{}, "empty filesystem type"
	}
	m.FSType = unescape(fields[sep+1])
	m.Source = unescape(fields[sep+2])
	m.SuperOptions = fields[sep+3]
	return m, ""
}

// setOptional records one optional field.
func (m *Mount) setOptional(f string) string {
	tag, val, hasVal := strings.Cut(f, ":")
	var dst *int
	switch tag {
	case "":
		return "empty optional field"
	case "shared":
		dst = &m.Shared
	case "master":
		dst = &m.Master
	case "propagate_from":
		dst = &m.PropagateFrom
	case "unbindable":
		m.Unbindable = true
		return ""
	default:
		return "" // unknown tag: ignored, proc(5)
	}
	if !hasVal {
		return "optional field " + strconv.Quote(trim(f)) + " without a value"
	}
	n, ok := parseInt(val)
	if !ok {
		return "bad optional field " + strconv.Quote(trim(f))
	}
	*dst = n
	return ""
}

// parseInt parses a non-negative decimal that fits in 32 bits, as the
// kernel prints mount IDs and peer group IDs.
func parseInt(s string) (int, bool) {
	n, ok := parseUint32(s)
	return int(n), ok
}

func parseUint32(s string) (uint32, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// trim bounds strings quoted in error reasons.
func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Path returns the mountinfo file of pid under root:
// <root>/proc/<pid>/mountinfo, with pid 0 meaning "self" and an empty root
// meaning "/".
func Path(root string, pid int) string {
	if root == "" {
		root = "/"
	}
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	return filepath.Join(root, "proc", p, "mountinfo")
}

// Read parses <root>/proc/<pid>/mountinfo (pid 0: the calling process,
// "self"). root is "/" in production, the host's root as seen from a pod
// ("/host"), or a fixture directory in tests. Like Parse it returns the good
// mounts together with a *ParseError when lines were skipped.
func Read(root string, pid int) ([]Mount, error) {
	if pid < 0 {
		return nil, fmt.Errorf("read mountinfo: invalid pid %d", pid)
	}
	path := Path(root, pid)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	mounts, err := Parse(f)
	if err != nil {
		return mounts, fmt.Errorf("read mountinfo %s: %w", path, err)
	}
	return mounts, nil
}
