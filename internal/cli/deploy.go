//go:build !nodeploy

package cli

import (
	"github.com/spf13/cobra"
)

// fleetCommands are the commands that roll drmfilter out and report on a
// fleet. They link client-go and the cloud SDKs, which the node agent does
// not need: the agent's packages and image are built with -tags nodeploy
// (see deploy_off.go), which keeps its binary and memory small.
func fleetCommands(s Streams) []*cobra.Command {
	return []*cobra.Command{newDeployCommand(s), newUndeployCommand(s), newFleetCommand(s)}
}

// newDeployCommand groups the fleet rollouts: a Kubernetes cluster, Azure
// VMs and scale sets, AWS instances and Auto Scaling Groups. Each target is
// its own file (deploy_kubernetes.go, deploy_azure.go, deploy_aws.go).
func newDeployCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Roll drmfilter out to a Kubernetes cluster or to cloud machines",
		Long: `Roll drmfilter out to many machines at once.

  drmfilter deploy kubernetes   DaemonSet on every Linux node, policies in a ConfigMap
  drmfilter deploy azure        Azure VMs and VM Scale Sets (Custom Script extension)
  drmfilter deploy aws          EC2 instances (SSM Run Command) and Auto Scaling Groups

Every target takes --dry-run, which prints what would be done and changes nothing.`,
	}
	cmd.AddCommand(newDeployKubernetesCommand(s), newDeployAzureCommand(s), newDeployAWSCommand(s))
	return cmd
}

// newUndeployCommand removes what deploy created.
func newUndeployCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "undeploy",
		Short: "Remove what 'drmfilter deploy' created",
	}
	cmd.AddCommand(newUndeployKubernetesCommand(s))
	return cmd
}

// newFleetCommand reports on deployed agents.
func newFleetCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Report on the agents of a fleet",
	}
	cmd.AddCommand(newFleetStatusCommand(s))
	return cmd
}
