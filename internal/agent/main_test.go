package agent

import (
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
	"github.com/drmfilter/drmfilter/internal/testutil/guest"
)

// Every event descriptor the agent receives must be closed: the whole
// package fails if a test leaves descriptors open. In the qemu guest that
// TestBehaviourInGuest boots, this binary is the guest's init too.
func TestMain(m *testing.M) { guest.MainFunc(m, func() int { return testutil.RunWithFDCheck(m) }) }
