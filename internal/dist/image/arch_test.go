package image

import (
	"runtime"
	"slices"
	"testing"

	"github.com/drmfilter/drmfilter/internal/dist"
)

// goarch is the architecture the test runs on, when packages are built for it.
func goarch(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" || !slices.Contains(dist.Arches, runtime.GOARCH) {
		t.Skipf("skipping: cannot run a linux/%v image binary on %s/%s", dist.Arches, runtime.GOOS, runtime.GOARCH)
	}
	return runtime.GOARCH
}
