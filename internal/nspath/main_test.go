package nspath

import (
	"os"
	"testing"

	"github.com/drmfilter/drmfilter/internal/testutil"
)

// TestMain fails the package when a test leaves a descriptor open: HostPath
// opens the process's root for every call.
func TestMain(m *testing.M) { os.Exit(testutil.RunWithFDCheck(m)) }
