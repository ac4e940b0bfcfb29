//go:build nodeploy

package cli

import (
	"strings"
	"testing"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

func TestNodeBuildExplainsTheMissingFleetCommands(t *testing.T) {
	for _, cmd := range []string{"deploy", "undeploy", "fleet"} {
		code, _, errOut := run(t, cmd, "kubernetes", "--policy", "x")
		if code != exitcode.Unsupported || !strings.Contains(errOut, "built for nodes") || !strings.Contains(errOut, cmd+" command") {
			t.Errorf("%s: exit %d, stderr:\n%s", cmd, code, errOut)
		}
	}
}
