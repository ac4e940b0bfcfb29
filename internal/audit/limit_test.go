package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestOneUserCannotFloodTheLog: a user who is denied the same thing in a
// loop and then many different things is written a bounded number of
// records, summed up at the end of the window, while another user's
// records are all written.
func TestOneUserCannotFloodTheLog(t *testing.T) {
	var b bytes.Buffer
	w := New(Options{QueueSize: 1 << 14, Limit: LimitOptions{Window: time.Hour, PerUID: 100}}, NewStreamSink(&b))
	deny := func(uid uint32, path string) {
		w.Write(&Record{Decision: DecisionDeny, Operation: OpOpen, Path: path, Exe: "/usr/bin/cat", UID: uid, Rule: "others"})
	}
	for range 5000 {
		deny(1000, "/srv/secret")
	}
	for i := range 2000 {
		deny(1000, fmt.Sprintf("/srv/secret-%d", i))
	}
	for i := range 10 {
		deny(0, fmt.Sprintf("/srv/root-%d", i))
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var byUID = map[uint32]int{}
	var repeated, suppressed uint64
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Decision == DecisionSuppressed:
			if r.UID != 1000 {
				t.Errorf("suppressed record for uid %d", r.UID)
			}
			suppressed += r.Count
		case r.Repeated > 0:
			if r.Path != "/srv/secret" {
				t.Errorf("repeat summary for %s", r.Path)
			}
			repeated += r.Repeated
		default:
			byUID[r.UID]++
		}
	}
	if byUID[1000] != 100 || byUID[0] != 10 {
		t.Errorf("records written by uid: %v, want 100 for uid 1000 and all 10 for uid 0", byUID)
	}
	if repeated != 4999 || suppressed != 1901 {
		t.Errorf("repeated %d (want 4999), suppressed %d (want 1901): every record must be accounted for", repeated, suppressed)
	}
	if d := w.Dropped(); d != 0 {
		t.Errorf("%d records dropped", d)
	}
}

// TestLimiterOff: a negative window writes every record.
func TestLimiterOff(t *testing.T) {
	var b bytes.Buffer
	w := New(Options{Limit: LimitOptions{Window: -1}}, NewStreamSink(&b))
	for range 50 {
		w.Write(&Record{Decision: DecisionDeny, Path: "/x"})
	}
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b.Bytes(), []byte("\n")); n != 50 {
		t.Errorf("%d records, want 50", n)
	}
}
