package environ_test

import (
	"slices"
	"testing"

	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// TestPolicyKnowsEveryDetectedID: a policy can select every hypervisor and
// cloud that detection can report, and nothing detection never reports.
func TestPolicyKnowsEveryDetectedID(t *testing.T) {
	for _, c := range []struct {
		what           string
		detected, pols []string
	}{
		{"hypervisor", environ.HypervisorIDs(), policy.KnownHypervisors()},
		{"cloud", environ.CloudIDs(), policy.KnownClouds()},
	} {
		for _, id := range c.detected {
			if !slices.Contains(c.pols, id) {
				t.Errorf("detection reports %s %q, which a policy cannot select", c.what, id)
			}
		}
		for _, id := range c.pols {
			if !slices.Contains(c.detected, id) {
				t.Errorf("a policy accepts %s %q, which detection never reports", c.what, id)
			}
		}
	}
}
