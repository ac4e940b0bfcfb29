// Package accounts resolves user and group names to IDs from the passwd
// and group files under a root directory: the host's accounts as an agent
// in a pod sees them (/host/etc/passwd), where os/user would read the
// image's own /etc/passwd. os/user has no way to read under another root,
// hence this small parser of passwd(5) and group(5); names served by NSS
// modules alone (LDAP, SSSD) are not in these files, which is why the
// agent uses os/user when the host root is "/".
package accounts

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Files resolves names from Root/etc/passwd and Root/etc/group, read on
// every lookup (lookups happen when policies load, not per event).
type Files struct {
	Root string
}

// LookupUser returns the UID of the user name.
func (f Files) LookupUser(name string) (uint32, error) {
	return lookup(filepath.Join(f.Root, "etc/passwd"), "user", name)
}

// LookupGroup returns the GID of the group name.
func (f Files) LookupGroup(name string) (uint32, error) {
	return lookup(filepath.Join(f.Root, "etc/group"), "group", name)
}

// ErrUnknown is matched by the error for a name the file does not list.
var ErrUnknown = errors.New("unknown name")

// lookup finds name in the first field of a colon-separated account file
// and returns its third field (the ID), as passwd(5) and group(5) lay them
// out.
func lookup(path, kind, name string) (uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("%s %q: %w", kind, name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20) // group lines list members and can be long
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.SplitN(line, ":", 4)
		if len(fields) < 3 || fields[0] != name {
			continue
		}
		id, err := strconv.ParseUint(fields[2], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%s %q in %s: bad ID %q", kind, name, path, fields[2])
		}
		return uint32(id), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s %q: reading %s: %w", kind, name, path, err)
	}
	return 0, fmt.Errorf("%s %q: %w in %s", kind, name, ErrUnknown, path)
}
