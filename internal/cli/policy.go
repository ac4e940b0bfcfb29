package cli

import "github.com/spf13/cobra"

func newPolicyCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate protection policies and explain their decisions",
	}
	cmd.AddCommand()
	return cmd
}
