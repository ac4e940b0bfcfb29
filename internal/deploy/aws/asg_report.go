package aws

import (
	"fmt"
	"io"
)

// WriteASGPlan prints the plan: the group, the launch template versions,
// the user data change and the refresh preferences.
func WriteASGPlan(w io.Writer, p ASGPlan, dryRun bool) error {
	if dryRun {
		fmt.Fprintln(w, "Dry run: nothing was changed (only DescribeAutoScalingGroups, DescribeInstanceRefreshes and DescribeLaunchTemplateVersions were called).")
		fmt.Fprintln(w)
	}
	name := p.LaunchTemplateID
	if p.LaunchTemplateName != "" {
		name += " (" + p.LaunchTemplateName + ")"
	}
	fmt.Fprintf(w, "Auto Scaling group  %s\n", p.Group)
	fmt.Fprintf(w, "launch template     %s, group uses version %s = %d", name, p.GroupVersion, p.SourceVersion)
	if p.MixedInstances {
		fmt.Fprint(w, " (mixed instances policy)")
	}
	fmt.Fprintln(w)
	verb := "would call"
	if !dryRun {
		verb = "calls"
	}
	fmt.Fprintf(w, "\n1. %s ec2:CreateLaunchTemplateVersion: SourceVersion %d, description %q, new UserData:\n", verb, p.SourceVersion, p.VersionDescription)
	fmt.Fprintf(w, "   old user data: %s, %d bytes; new: %d bytes; adds:\n", p.UserDataFormat, p.OldUserDataBytes, p.NewUserDataBytes)
	for line := range splitLines(p.InstallStep) {
		fmt.Fprintf(w, "     %s\n", line)
	}
	fmt.Fprintf(w, "2. %s autoscaling:StartInstanceRefresh: Strategy Rolling, DesiredConfiguration = the new version,\n", verb)
	fmt.Fprintf(w, "   MinHealthyPercentage %d, InstanceWarmup %d, AutoRollback %t, SkipMatching true\n", p.MinHealthy, p.InstanceWarmup, p.AutoRollback)
	fmt.Fprintln(w, "3. polls autoscaling:DescribeInstanceRefreshes until the refresh ends")
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	return nil
}
