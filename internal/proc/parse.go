package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// errMalformed is wrapped by the parsers' errors.
var errMalformed = errors.New("malformed")

// Status is the part of /proc/PID/status (proc(5)) that drmfilter uses.
type Status struct {
	// Name is the process name (Name:), escapes kept.
	Name string
	// State is the state letter (State:): R, S, D, Z, X, T, t, I ...
	State byte
	// UID, EUID, GID and EGID are the real and effective ids (the first
	// two values of Uid: and Gid:).
	UID, EUID uint32
	GID, EGID uint32
	// Groups are the supplementary groups (Groups:), nil when none.
	Groups []uint32
	// Kthread is true for kernel threads (Kthread:, Linux 6.10 and later;
	// false when the line is missing).
	Kthread bool
}

// ParseStatus parses a /proc/PID/status file. Uid: and Gid: are required;
// other lines are optional and unknown lines are ignored.
func ParseStatus(rd io.Reader) (Status, error) {
	b, err := io.ReadAll(rd)
	if err != nil {
		return Status{}, fmt.Errorf("status: read: %w", err)
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Status, error) {
	var (
		st           Status
		haveU, haveG bool
	)
	for len(b) > 0 {
		var ln []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			ln, b = b[:i], b[i+1:]
		} else {
			ln, b = b, nil
		}
		name, val, ok := bytes.Cut(ln, []byte{':'})
		if !ok {
			continue
		}
		val = bytes.TrimLeft(val, " \t")
		var err error
		switch string(name) {
		case "Name":
			st.Name = string(val)
		case "State":
			if len(val) > 0 {
				st.State = val[0]
			}
		case "Uid":
			st.UID, st.EUID, err = twoIDs(val)
			haveU = err == nil
		case "Gid":
			st.GID, st.EGID, err = twoIDs(val)
			haveG = err == nil
		case "Groups":
			st.Groups, err = appendIDs(nil, val)
		case "Kthread":
			st.Kthread = string(bytes.TrimSpace(val)) == "1"
		}
		if err != nil {
			return Status{}, fmt.Errorf("status: %s: %w", name, err)
		}
	}
	if !haveU || !haveG {
		return Status{}, fmt.Errorf("status: no Uid: or Gid: line: %w", errMalformed)
	}
	return st, nil
}

// twoIDs parses the first two of the four ids on a Uid: or Gid: line.
func twoIDs(val []byte) (a, b uint32, err error) {
	ids, err := appendIDs(make([]uint32, 0, 4), val)
	if err != nil {
		return 0, 0, err
	}
	if len(ids) < 2 {
		return 0, 0, fmt.Errorf("%d ids: %w", len(ids), errMalformed)
	}
	return ids[0], ids[1], nil
}

// appendIDs appends the whitespace-separated decimal ids in val.
func appendIDs(dst []uint32, val []byte) ([]uint32, error) {
	for _, f := range bytes.Fields(val) {
		v, err := parseUint(f, 32)
		if err != nil {
			return nil, err
		}
		dst = append(dst, uint32(v))
	}
	return dst, nil
}

// parseUint parses a decimal without allocating.
func parseUint(b []byte, bits int) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, fmt.Errorf("number %q: %w", b, errMalformed)
	}
	limit := ^uint64(0) >> (64 - bits)
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("number %q: %w", b, errMalformed)
		}
		d := uint64(c - '0')
		if v > (limit-d)/10 {
			return 0, fmt.Errorf("number %q: %w", b, strconv.ErrRange)
		}
		v = v*10 + d
	}
	return v, nil
}

// errStatShort is built once: ParseStatStart runs on every cache hit
// without a pidfd.
var errStatShort = fmt.Errorf("stat: fewer than 22 fields: %w", errMalformed)

// ParseStatStart returns the start time (field 22, in clock ticks after
// boot) of a /proc/PID/stat line. The name in field 2 may hold spaces and
// parentheses, so fields are counted after its last ")". It does not
// allocate on success.
func ParseStatStart(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errStatShort
	}
	b = b[i+1:]
	// Fields 3 onwards; the start time is the 20th of them.
	field := 0
	for len(b) > 0 {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		j := bytes.IndexAny(b, " \n")
		if j < 0 {
			j = len(b)
		}
		if j == 0 {
			break
		}
		if field++; field == 20 {
			return parseUint(b[:j], 64)
		}
		b = b[j:]
	}
	return 0, errStatShort
}
