package agent

import (
	"os"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// Every event descriptor the agent receives must be closed: the whole
// package fails if a test leaves descriptors open.
func TestMain(m *testing.M) { os.Exit(testutil.RunWithFDCheck(m)) }
