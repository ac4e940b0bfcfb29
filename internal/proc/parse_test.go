package proc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The samples in testdata/status were captured on the development VM
// (kernel 6.18): cat /proc/self/status as root; the same under
// setpriv --reuid 1000 --regid 1000 --groups 4,24,27,100,65534; under
// setpriv --ruid 1000 --euid 0 --rgid 1001 --egid 0 --groups 5; of kthreadd
// (pid 2); and of a zombie (a child of `sh -c 'sleep 0 & exec sleep 2'`).
func TestParseStatusSamples(t *testing.T) {
	cases := []struct {
		file      string
		name      string
		state     byte
		uid, euid uint32
		gid, egid uint32
		groups    []uint32
		kthread   bool
	}{
		{"root-host.txt", "cat", 'R', 0, 0, 0, 0, nil, false},
		{"user-groups.txt", "cat", 'R', 1000, 1000, 1000, 1000, []uint32{4, 24, 27, 100, 65534}, false},
		{"setuid-mixed.txt", "cat", 'R', 1000, 0, 1001, 0, []uint32{5}, false},
		{"kthread.txt", "kthreadd", 'S', 0, 0, 0, 0, nil, true},
		{"zombie.txt", "sleep", 'Z', 0, 0, 0, 0, nil, false},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", "status", c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := ParseStatus(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Name != c.name || st.State != c.state || st.UID != c.uid || st.EUID != c.euid ||
				st.GID != c.gid || st.EGID != c.egid || !slices.Equal(st.Groups, c.groups) || st.Kthread != c.kthread {
				t.Errorf("got %+v (state %c)", st, st.State)
			}
		})
	}
}

func TestParseStatusBad(t *testing.T) {
	for _, in := range []string{
		"",
		"Name:\tx\n",
		"Uid:\t0\t0\t0\t0\n",                   // no Gid
		"Uid:\tx\t0\t0\t0\nGid:\t0\t0\t0\t0\n", // not a number
		"Uid:\t0\nGid:\t0\t0\t0\t0\n",          // one id
		"Uid:\t4294967296\t0\t0\t0\nGid:\t0\t0\n", // above 32 bits
		"Uid:\t0\t0\nGid:\t0\t0\nGroups:\t1 -2\n",
	} {
		if st, err := ParseStatus(strings.NewReader(in)); err == nil {
			t.Errorf("%q: no error, %+v", in, st)
		}
	}
	// No trailing newline, unknown lines and a line without a colon are fine.
	st, err := ParseStatus(strings.NewReader("junk\nFoo:\tbar\nUid:\t7\t8\t9\t10\nGid:\t1\t2\t3\t4"))
	if err != nil || st.UID != 7 || st.EUID != 8 || st.GID != 1 {
		t.Errorf("%+v %v", st, err)
	}
}

func TestParseStatStart(t *testing.T) {
	self, err := os.ReadFile("testdata/self-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	zombie, err := os.ReadFile("testdata/zombie-stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	tail := " S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0\n"
	for in, want := range map[string]uint64{
		string(self):             148365,
		string(zombie):           strconvStart(t, zombie),
		"42 (a) b) c)" + tail:    987654,
		"42 (with space)" + tail: 987654,
		"42 ()" + tail:           987654,
		"42 (x\n)" + tail:        987654,
	} {
		got, err := ParseStatStart([]byte(in))
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "42 (x) S 1 2 3", "42 x S 1", "42 (x)" + strings.Replace(tail, "987654", "9x", 1)} {
		if _, err := ParseStatStart([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if !errors.Is(errStatShort, errMalformed) {
		t.Error("errStatShort does not wrap errMalformed")
	}
	b := []byte(string(self))
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseStatStart(b) }); n != 0 {
		t.Errorf("ParseStatStart allocates %v times", n)
	}
}

// strconvStart is the 22nd field counted the simple way, for a name
// without spaces.
func strconvStart(t *testing.T, b []byte) uint64 {
	f := strings.Fields(string(b))
	v, err := strconv.ParseUint(f[21], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "18446744073709551615": 1<<64 - 1, "4294967295": 1<<32 - 1} {
		if got, err := parseUint([]byte(in), 64); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, in := range []string{"", "18446744073709551616", "99999999999999999999", "1a", "-1"} {
		if _, err := parseUint([]byte(in), 64); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	if _, err := parseUint([]byte("4294967296"), 32); err == nil {
		t.Error("32-bit overflow not caught")
	}
}

// FuzzParse runs both parsers on arbitrary bytes: they must not panic, and
// a status they accept has its Uid: and Gid: values.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"status/root-host.txt", "status/user-groups.txt", "status/zombie.txt", "self-stat.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseStatStart(b)
		st, err := parseStatus(b)
		if err == nil && !strings.Contains(string(b), "Uid:") {
			t.Errorf("accepted without Uid: %+v", st)
		}
	})
}
