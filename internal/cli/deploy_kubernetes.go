package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// Being written: this file is replaced by its real command.
func newDeployKubernetesCommand(Streams) *cobra.Command {
	return &cobra.Command{Use: "deploykubernetes", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}

func newUndeployKubernetesCommand(Streams) *cobra.Command {
	return &cobra.Command{Use: "undeploykubernetes", Hidden: true, RunE: func(*cobra.Command, []string) error { return errors.New("not built yet") }}
}
