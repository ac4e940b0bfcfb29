package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Being written: this file is replaced by its real command.
func newFleetStatusCommand(Streams) *cobra.Command {
	return &cobra.Command{Use: "fleetstatus", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
