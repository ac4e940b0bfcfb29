package bpflsm

import (
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// On any machine Probe gives a verdict with a reason, and when BPF LSM is
// not usable, a fix or an error naming what refused.
func TestProbeGivesAReason(t *testing.T) {
	testutil.RequireRoot(t)
	a := Probe()
	t.Logf("probe: %+v", a)
	if a.Reason == "" {
		t.Fatal("Probe gave no reason")
	}
	if !a.OK && a.Fix == "" && len(a.LSMs) > 0 {
		t.Errorf("Probe found BPF LSM unusable with an LSM list but gave no fix: %+v", a)
	}
}
