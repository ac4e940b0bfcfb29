//go:build nodeploy

package cli

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// fleetCommands, in a build without the fleet commands (the node agent's
// packages and image, built with -tags nodeploy), are stand-ins that say
// where the commands are instead of "unknown command".
func fleetCommands(Streams) []*cobra.Command {
	var out []*cobra.Command
	for _, name := range []string{"deploy", "undeploy", "fleet"} {
		out = append(out, &cobra.Command{
			Use:                name,
			Short:              "Not in this build: the agent's packages leave out the fleet commands",
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return withCode(exitcode.Unsupported, errors.New("this drmfilter was built for nodes (-tags nodeploy) and has no "+name+
					" command; run it from a full build: go install github.com/drmfilter/drmfilter/cmd/drmfilter@latest"))
			},
		})
	}
	return out
}
