package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeHost is a host's files by path, counting the questions asked.
type fakeHost struct {
	mu    sync.Mutex
	files map[string]FileID
	asked int
}

func (h *fakeHost) Identify(path string) (FileID, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked++
	id, ok := h.files[path]
	if !ok {
		return FileID{}, errors.New("no such file")
	}
	return id, nil
}

func (h *fakeHost) set(path string, id FileID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.files[path] = id
}

func (h *fakeHost) questions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.asked
}

const hostExeDoc = `apiVersion: drmfilter.dev/v1
kind: ProtectionPolicy
metadata: {name: host-exes}
spec:
  files: {paths: ["/p/**"]}
  rules:
    - {name: head, operations: [open], subjects: {executables: [/usr/bin/head, "/opt/tools/*"]}, effect: allow}
    - {name: by-hash, operations: [open], subjects: {executableHashes: ["sha256:%s"]}, effect: allow}
    - {name: others, operations: [open], effect: deny}
`

// TestExecutablesAreTheHostsFiles: a rule's executables select a process
// only if its executable is the file installed at that path on the host
// (issue #17, cases 1 and 15), for literal paths and globs alike; the
// identity follows the host's current file; hashes still match by content.
func TestExecutablesAreTheHostsFiles(t *testing.T) {
	hash := strings.Repeat("cd", 32)
	m := mustMatcher(t, fmt.Sprintf(hostExeDoc, hash))
	head := FileID{Dev: 8, Ino: 100, Ctime: 1}
	tool := FileID{Dev: 8, Ino: 200, Ctime: 1}
	host := &fakeHost{files: map[string]FileID{"/usr/bin/head": head, "/opt/tools/t": tool}}
	run := func(s Subject) Decision {
		s.Host = host
		return m.Decide(&Input{Op: OpOpen, Path: "/p/f", Subject: s})
	}
	check := func(what string, d Decision, rule string, notHost bool) {
		t.Helper()
		if d.Rule != rule || d.ExeNotHost != notHost {
			t.Errorf("%s: decided by %q (ExeNotHost %v), want %q (ExeNotHost %v)", what, d.Rule, d.ExeNotHost, rule, notHost)
		}
	}

	check("the host's head", run(Subject{Exe: "/usr/bin/head", ExeID: head}), "head", false)
	check("the host's head again", run(Subject{Exe: "/usr/bin/head", ExeID: head}), "head", false)
	if n := host.questions(); n != 1 {
		t.Errorf("the host was asked %d times for one path, want once (cached)", n)
	}
	// Another program seen at the same path: bind-mounted over it in
	// another mount namespace, or a container image's own file.
	check("another file printed as /usr/bin/head", run(Subject{Exe: "/usr/bin/head", ExeID: FileID{Dev: 8, Ino: 555, Ctime: 1}}), "others", true)
	check("a container's /usr/bin/head", run(Subject{Exe: "/usr/bin/head", ExeID: FileID{Dev: 77, Ino: 100, Ctime: 1}}), "others", true)
	check("the host's file through a glob", run(Subject{Exe: "/opt/tools/t", ExeID: tool}), "head", false)
	check("another file through a glob", run(Subject{Exe: "/opt/tools/t", ExeID: head}), "others", true)
	check("a glob match with no host file", run(Subject{Exe: "/opt/tools/u", ExeID: tool}), "others", true)
	check("an unknown identity", run(Subject{Exe: "/usr/bin/head"}), "others", true)
	check("a file with no name left", run(Subject{Exe: "/usr/bin/head", ExeID: head, ExeDeleted: true}), "others", true)
	check("a name no rule lists", run(Subject{Exe: "/usr/bin/cat", ExeID: head}), "others", false)

	// A package upgrade renames a new file over the path: the new file
	// matches; a process still running the old one has it nameless.
	newHead := FileID{Dev: 8, Ino: 101, Ctime: 2}
	host.set("/usr/bin/head", newHead)
	check("the upgraded head", run(Subject{Exe: "/usr/bin/head", ExeID: newHead}), "head", false)
	check("the old head still running", run(Subject{Exe: "/usr/bin/head", ExeID: FileID{Dev: 8, Ino: 100, Ctime: 2}, ExeDeleted: true}), "others", true)
	// A chmod of the file moves its change time: still the same file.
	chmodded := FileID{Dev: 8, Ino: 101, Ctime: 3}
	host.set("/usr/bin/head", chmodded)
	check("the same head after a chmod", run(Subject{Exe: "/usr/bin/head", ExeID: chmodded}), "head", false)
	// A cached file whose change time the process's copy no longer has
	// is looked up again: here the path now holds another file.
	host.set("/usr/bin/head", FileID{Dev: 8, Ino: 102, Ctime: 4})
	check("a hard link of a replaced head", run(Subject{Exe: "/usr/bin/head", ExeID: FileID{Dev: 8, Ino: 101, Ctime: 4}}), "others", true)

	// Hashes are the content, wherever the file is.
	var sum [32]byte
	for i := range sum {
		sum[i] = 0xcd
	}
	check("a foreign file with a listed hash", run(Subject{Exe: "/usr/bin/head", ExeID: FileID{Dev: 77, Ino: 9, Ctime: 1}, ExeSHA256: sum, HasSHA256: true}), "by-hash", true)

	// Without Host (policy explain asks about a path): by path alone.
	if d := m.Decide(&Input{Op: OpOpen, Path: "/p/f", Subject: Subject{Exe: "/usr/bin/head"}}); d.Rule != "head" || d.ExeNotHost {
		t.Errorf("without a host, by path: %+v", d)
	}
	in := &Input{Op: OpOpen, Path: "/p/f", Subject: Subject{Exe: "/usr/bin/head"}}
	in2 := *in
	if d, ex := m.Decide(in), m.Explain(&in2); d != ex.Decision {
		t.Errorf("Decide %+v and Explain %+v disagree", d, ex.Decision)
	}

	// A new Matcher (a reload) asks the host again.
	before := host.questions()
	m2 := mustMatcher(t, fmt.Sprintf(hostExeDoc, hash))
	id := FileID{Dev: 8, Ino: 102, Ctime: 4}
	if d := m2.Decide(&Input{Op: OpOpen, Path: "/p/f", Subject: Subject{Exe: "/usr/bin/head", ExeID: id, Host: host}}); d.Rule != "head" {
		t.Errorf("after a reload: %+v", d)
	}
	if host.questions() != before+1 {
		t.Errorf("a new Matcher did not ask the host")
	}
}

// TestHostExeCacheIsBounded: paths a glob matched do not grow the cache
// without bound, and paths with no host file are not remembered.
func TestHostExeCacheIsBounded(t *testing.T) {
	c := newHostExeCache()
	host := &fakeHost{files: map[string]FileID{}}
	for i := range 3 * hostExeCacheMax {
		p := fmt.Sprintf("/opt/tools/%d", i)
		id := FileID{Dev: 1, Ino: uint64(i + 1)}
		host.set(p, id)
		if !c.isHosts(&Subject{Exe: p, ExeID: id, Host: host}) {
			t.Fatalf("%s: not the host's file", p)
		}
		if n := c.len(); n > hostExeCacheMax {
			t.Fatalf("%d paths cached, more than %d", n, hostExeCacheMax)
		}
	}
	c = newHostExeCache()
	if c.isHosts(&Subject{Exe: "/nowhere", ExeID: FileID{Dev: 1, Ino: 1}, Host: host}) || c.len() != 0 {
		t.Errorf("a path with no host file matched or was cached (%d cached)", c.len())
	}
}

func TestDecideWithHostExeCachedDoesNotAllocate(t *testing.T) {
	m := mustMatcher(t, fmt.Sprintf(hostExeDoc, strings.Repeat("cd", 32)))
	head := FileID{Dev: 8, Ino: 100, Ctime: 1}
	host := &fakeHost{files: map[string]FileID{"/usr/bin/head": head}}
	in := &Input{Op: OpOpen, Path: "/p/f", Subject: Subject{Exe: "/usr/bin/head", ExeID: head, Host: host}}
	m.Decide(in)
	allocs := testing.AllocsPerRun(1000, func() {
		if d := m.Decide(in); d.Rule != "head" {
			t.Fatalf("decided by %q", d.Rule)
		}
	})
	if allocs != 0 {
		t.Fatalf("a decision with the host's file cached allocated %v times", allocs)
	}
}

// BenchmarkDecideHostExe is the cost of an executables rule: by path
// alone (no Host), and with the host's file cached.
func BenchmarkDecideHostExe(b *testing.B) {
	m := mustMatcher(b, fmt.Sprintf(hostExeDoc, strings.Repeat("cd", 32)))
	head := FileID{Dev: 8, Ino: 100, Ctime: 1}
	host := &fakeHost{files: map[string]FileID{"/usr/bin/head": head}}
	for _, c := range []struct {
		name string
		s    Subject
	}{
		{"by-path", Subject{Exe: "/usr/bin/head", ExeID: head}},
		{"host-cached", Subject{Exe: "/usr/bin/head", ExeID: head, Host: host}},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := &Input{Op: OpOpen, Path: "/p/f", Subject: c.s}
			b.ReportAllocs()
			for b.Loop() {
				m.Decide(in)
			}
		})
	}
}
