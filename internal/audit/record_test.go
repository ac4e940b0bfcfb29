package audit

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

func sampleRecord() Record {
	return Record{
		V:           Version,
		Time:        time.Date(2026, 11, 26, 20, 53, 33, 123456789, time.UTC),
		Decision:    DecisionDeny,
		Mode:        ModeEnforce,
		Policy:      "finance-docs",
		Rule:        "everyone-else",
		Operation:   OpOpen,
		Path:        "/srv/finance/q3.xlsx",
		Dev:         2049,
		Ino:         131074,
		PID:         4242,
		Exe:         "/usr/bin/cat",
		UID:         1000,
		GID:         1000,
		ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Runtime:     "docker",
		Pod:         "payments/api-7d9f",
		Env:         "kvm/aws/docker",
	}
}

// The exact line is the schema: a change here is a schema change.
const sampleLine = `{"v":1,"time":"2026-11-26T20:53:33.123456789Z","decision":"deny","mode":"enforce","policy":"finance-docs","rule":"everyone-else","operation":"open","path":"/srv/finance/q3.xlsx","dev":2049,"ino":131074,"pid":4242,"exe":"/usr/bin/cat","uid":1000,"gid":1000,"containerId":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","runtime":"docker","pod":"payments/api-7d9f","env":"kvm/aws/docker"}` + "\n"

func TestRecordGolden(t *testing.T) {
	r := sampleRecord()
	if got := string(AppendJSON(nil, &r)); got != sampleLine {
		t.Errorf("AppendJSON:\n got %s\nwant %s", got, sampleLine)
	}
}

func keys(t *testing.T, line []byte) []string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestRecordRoundTrip(t *testing.T) {
	full := sampleRecord()
	failure := Record{
		V: Version, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Decision: DecisionFailure, Mode: ModeAudit, Operation: OpExec,
		Path: "/x", Dev: 1, Ino: 2, PID: 3, Exe: "/bin/sh", Env: "none", Reason: ReasonDeadline,
	}
	root := Record{ // zero ids must still be written: uid 0 is root
		V: Version, Time: time.Unix(0, 1).UTC(), Decision: DecisionAudit, Mode: ModeEnforce,
		Operation: OpRead, Path: "/etc/shadow", Exe: "/usr/bin/cat",
	}
	cases := []struct {
		name string
		rec  Record
		keys []string
	}{
		{"deny", full, []string{"containerId", "decision", "dev", "env", "exe", "gid", "ino", "mode", "operation", "path", "pid", "pod", "policy", "rule", "runtime", "time", "uid", "v"}},
		{"failure", failure, []string{"decision", "dev", "env", "exe", "gid", "ino", "mode", "operation", "path", "pid", "reason", "time", "uid", "v"}},
		{"root", root, []string{"decision", "dev", "exe", "gid", "ino", "mode", "operation", "path", "pid", "time", "uid", "v"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := AppendJSON(nil, &c.rec)
			if got := keys(t, line); !slices.Equal(got, c.keys) {
				t.Errorf("keys %v, want %v", got, c.keys)
			}
			var back Record
			if err := json.Unmarshal(line, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c.rec) {
				t.Errorf("round trip:\n got %+v\nwant %+v", back, c.rec)
			}
			// encoding/json of the same record decodes to the same value.
			std, err := json.Marshal(&c.rec)
			if err != nil {
				t.Fatal(err)
			}
			var back2 Record
			if err := json.Unmarshal(std, &back2); err != nil || !reflect.DeepEqual(back2, back) {
				t.Errorf("encoding/json disagrees: %s vs %s", std, line)
			}
		})
	}
}

func TestDroppedRecord(t *testing.T) {
	r := Record{Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Decision: DecisionDropped, Count: 17, Path: "ignored"}
	want := `{"v":1,"time":"2026-11-26T00:00:00Z","decision":"dropped","count":17}` + "\n"
	if got := string(AppendJSON(nil, &r)); got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

func TestTimeIsUTC(t *testing.T) {
	loc := time.FixedZone("X", 5*3600)
	r := Record{Time: time.Date(2026, 11, 26, 5, 0, 0, 5, loc), Decision: DecisionDeny}
	var back Record
	if err := json.Unmarshal(AppendJSON(nil, &r), &back); err != nil {
		t.Fatal(err)
	}
	if s := back.Time.Format(time.RFC3339Nano); s != "2026-11-26T00:00:00.000000005Z" {
		t.Errorf("time %s", s)
	}
}

var escapeCases = []string{
	"", "plain", `quote " and \ backslash`, "new\nline\ttab\rcr", "\x00\x01\x1f\x7f", "\b\f",
	"<script>&amp;</script>", "ünïcödé 日本", "bad \xff\xfe utf8", "trunc \xe6\x97", "\u2028\u2029",
	"/srv/a b/c'd", string([]byte{0xc0, 0x80}),
}

// appendString escapes exactly as encoding/json does.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range escapeCases {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range escapeCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
		// A whole record holding s is one valid line that decodes back.
		r := sampleRecord()
		r.Path, r.Exe, r.Policy = s, s, s
		line := AppendJSON(nil, &r)
		if bytes.Count(line, []byte{'\n'}) != 1 {
			t.Fatalf("record is not one line: %q", line)
		}
		var back Record
		if err := json.Unmarshal(line, &back); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if utf8.ValidString(s) && (back.Path != s || back.Exe != s) {
			t.Errorf("%q came back as %q", s, back.Path)
		}
	})
}

func TestAppendJSONAllocs(t *testing.T) {
	r := sampleRecord()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], &r) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times", n)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSON(buf[:0], &r)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEncodingJSON(b *testing.B) {
	r := sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(&r)
	}
}

// TestInvalidNamesStayDistinct: two names that differ only in bytes that
// are not UTF-8 read alike in the JSON string (U+FFFD), and their exact
// bytes come back from the *Bytes fields.
func TestInvalidNamesStayDistinct(t *testing.T) {
	a, b := "/srv/x\xff.txt", "/srv/x\xfe.txt"
	var got []Record
	for _, p := range []string{a, b} {
		r := sampleRecord()
		r.Path, r.Exe, r.ContainerPath = p, p+"-exe", p+"-c"
		var back Record
		if err := json.Unmarshal(AppendJSON(nil, &r), &back); err != nil {
			t.Fatal(err)
		}
		got = append(got, back)
	}
	if got[0].Path != got[1].Path {
		t.Fatalf("the JSON strings differ (%q, %q): the test's premise is wrong", got[0].Path, got[1].Path)
	}
	for i, want := range []string{a, b} {
		if string(got[i].PathBytes) != want || string(got[i].ExeBytes) != want+"-exe" || string(got[i].ContainerPathBytes) != want+"-c" {
			t.Errorf("record %d: bytes %q %q %q, want %q", i, got[i].PathBytes, got[i].ExeBytes, got[i].ContainerPathBytes, want)
		}
	}
	// Valid names carry no bytes fields.
	r := sampleRecord()
	if line := AppendJSON(nil, &r); bytes.Contains(line, []byte("Bytes")) {
		t.Errorf("valid names got bytes fields: %s", line)
	}
}
