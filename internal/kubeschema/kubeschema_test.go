package kubeschema

import (
	"testing"
	"time"
)

func TestNodeStatusRoundTrip(t *testing.T) {
	in := NodeStatus{Node: "n1", Pod: "drmfilter-agent-x", PolicyHash: "sha256:abc", PolicyGeneration: 3,
		PolicySource: SourceAPI, Ready: true, UpdatedAt: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	v, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeNodeStatus(v)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
	if _, err := DecodeNodeStatus("{"); err == nil {
		t.Error("bad JSON decoded without error")
	}
}

func TestShortHash(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef": "0123456789ab",
		"abc":                     "abc",
		"":                        "",
	} {
		if got := ShortHash(in); got != want {
			t.Errorf("ShortHash(%q) = %q, want %q", in, got, want)
		}
	}
}
