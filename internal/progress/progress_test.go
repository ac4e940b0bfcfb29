package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestPlainLinesWhenNotATerminal(t *testing.T) {
	var b bytes.Buffer
	r := New(&b, 3, "instances")
	r.Step(1, "vm-0 succeeded")
	r.Note("batch 2 of 2")
	r.Step(2, "")
	r.Set(3, "")
	r.Done()
	want := "[1/3 instances] vm-0 succeeded\n[1/3 instances] batch 2 of 2\n3/3 instances\n"
	if got := b.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(b.String(), "\r") {
		t.Error("plain output has carriage returns")
	}
}
