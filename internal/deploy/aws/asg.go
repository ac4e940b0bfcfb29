package aws

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ASGOptions configure `deploy aws asg`.
type ASGOptions struct {
	Group   string
	Install InstallSpec
	// Version names drmfilter's version in the new launch template
	// version's description unless VersionDescription is set.
	Version            string
	VersionDescription string
	// MinHealthy is the refresh's MinHealthyPercentage (0-100);
	// InstanceWarmup its InstanceWarmup in seconds.
	MinHealthy     int32
	InstanceWarmup int32
	// NoRollback turns off AutoRollback.
	NoRollback bool
	// Timeout bounds the whole rollout; the refresh is not cancelled when
	// it passes (see RunASG).
	Timeout time.Duration
	DryRun  bool
	// PollMinDelay and PollMaxDelay bound the backoff between
	// DescribeInstanceRefreshes calls; zero means 10 s and 60 s.
	PollMinDelay, PollMaxDelay time.Duration
	// Progress receives progress lines (or a bar on a terminal).
	Progress io.Writer
	// OnPlan, if set, is called with the plan right before the first call
	// that changes anything (not in a dry run).
	OnPlan func(ASGPlan)
}

// ASGPlan is what RunASG found and does (or, in a dry run, would do).
type ASGPlan struct {
	Group              string `json:"group"`
	LaunchTemplateID   string `json:"launchTemplateId"`
	LaunchTemplateName string `json:"launchTemplateName"`
	// GroupVersion is the version the group names ("3", "$Latest").
	GroupVersion string `json:"groupVersion"`
	// SourceVersion is the number it resolved to, the new version's source.
	SourceVersion int64 `json:"sourceVersion"`
	// MixedInstances says the template comes from a mixed instances policy.
	MixedInstances bool `json:"mixedInstances,omitempty"`
	// UserDataFormat is what the old user data was (see AddInstallStep).
	UserDataFormat     string   `json:"userDataFormat"`
	OldUserDataBytes   int      `json:"oldUserDataBytes"`
	NewUserDataBytes   int      `json:"newUserDataBytes"`
	InstallStep        string   `json:"installStep"`
	VersionDescription string   `json:"versionDescription"`
	MinHealthy         int32    `json:"minHealthyPercentage"`
	InstanceWarmup     int32    `json:"instanceWarmup"`
	AutoRollback       bool     `json:"autoRollback"`
	Warnings           []string `json:"warnings,omitempty"`
	// NewVersion and RefreshID are set once created.
	NewVersion int64  `json:"newVersion,omitempty"`
	RefreshID  string `json:"instanceRefreshId,omitempty"`
}

// ASGResult is the rollout's outcome.
type ASGResult struct {
	Plan ASGPlan `json:"plan"`
	// Status is the refresh's last status (Successful, Failed, Cancelled,
	// RollbackSuccessful, RollbackFailed, or a running one on timeout).
	Status             string `json:"status,omitempty"`
	StatusReason       string `json:"statusReason,omitempty"`
	PercentageComplete int32  `json:"percentageComplete"`
	InstancesToUpdate  int32  `json:"instancesToUpdate"`
}

// ErrRefreshInProgress is returned when the group already has an instance
// refresh that has not ended.
var ErrRefreshInProgress = errors.New("an instance refresh is already in progress")

func (o *ASGOptions) validate() error {
	if o.Group == "" {
		return errors.New("--group is required")
	}
	if err := o.Install.Validate(); err != nil {
		return err
	}
	if o.MinHealthy < 0 || o.MinHealthy > 100 {
		return fmt.Errorf("--min-healthy %d is not a percentage from 0 to 100", o.MinHealthy)
	}
	if o.InstanceWarmup < 0 {
		return fmt.Errorf("--instance-warmup %d is negative", o.InstanceWarmup)
	}
	if o.Timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if len(o.VersionDescription) > 255 {
		return errors.New("--launch-template-version-description is longer than 255 characters")
	}
	if o.VersionDescription == "" {
		o.VersionDescription = "drmfilter install " + o.Version
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.PollMinDelay <= 0 {
		o.PollMinDelay = 10 * time.Second
	}
	if o.PollMaxDelay < o.PollMinDelay {
		o.PollMaxDelay = max(60*time.Second, o.PollMinDelay)
	}
	return nil
}

// RunASG installs drmfilter on the instances of an Auto Scaling group by
// replacing them: it creates a launch template version whose user data
// also runs install.sh, then starts an instance refresh whose desired
// configuration is that version (the group is switched to it only when the
// refresh succeeds, and switched back by an automatic rollback) and follows
// it to its end. A dry run makes only Describe* calls and returns the plan.
//
// When the timeout passes, the refresh is left running in AWS (cancelling
// it half-way would leave a group of mixed instances) and the error says
// how to follow, cancel or roll it back.
func RunASG(ctx context.Context, cfg awssdk.Config, o ASGOptions) (ASGResult, error) {
	if err := o.validate(); err != nil {
		return ASGResult{}, &OptionError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	asClient := autoscaling.NewFromConfig(cfg)
	ec2Client := ec2.NewFromConfig(cfg)

	group, err := describeGroup(ctx, asClient, o.Group)
	if err != nil {
		return ASGResult{}, err
	}
	spec, mixed, err := groupTemplate(group)
	if err != nil {
		return ASGResult{}, err
	}
	plan := ASGPlan{
		Group: o.Group, GroupVersion: awssdk.ToString(spec.Version), MixedInstances: mixed,
		VersionDescription: o.VersionDescription, MinHealthy: o.MinHealthy, InstanceWarmup: o.InstanceWarmup,
		AutoRollback: !o.NoRollback, InstallStep: Redact(installBlock(o.Install)),
	}
	if plan.GroupVersion == "" {
		plan.GroupVersion = "$Default"
	}
	if plan.AutoRollback && (plan.GroupVersion == "$Latest" || plan.GroupVersion == "$Default") {
		return ASGResult{Plan: plan}, fmt.Errorf("group %s uses its launch template's %s version, and AWS cannot roll an instance refresh back to it: point the group at a numbered version first, or pass --no-rollback", o.Group, plan.GroupVersion)
	}
	if err := checkNoRefresh(ctx, asClient, o.Group); err != nil {
		return ASGResult{Plan: plan}, err
	}
	source, err := describeVersion(ctx, ec2Client, spec)
	if err != nil {
		return ASGResult{Plan: plan}, err
	}
	plan.LaunchTemplateID = awssdk.ToString(source.LaunchTemplateId)
	plan.LaunchTemplateName = awssdk.ToString(source.LaunchTemplateName)
	plan.SourceVersion = awssdk.ToInt64(source.VersionNumber)
	var oldUserData []byte
	if source.LaunchTemplateData != nil && source.LaunchTemplateData.UserData != nil {
		if oldUserData, err = base64.StdEncoding.DecodeString(*source.LaunchTemplateData.UserData); err != nil {
			return ASGResult{Plan: plan}, fmt.Errorf("launch template %s version %d: user data is not base64: %w", plan.LaunchTemplateID, plan.SourceVersion, err)
		}
	}
	newUserData, format, warnings, err := AddInstallStep(oldUserData, o.Install)
	if err != nil {
		return ASGResult{Plan: plan}, fmt.Errorf("launch template %s version %d: %w", plan.LaunchTemplateID, plan.SourceVersion, err)
	}
	plan.UserDataFormat, plan.OldUserDataBytes, plan.NewUserDataBytes = format, len(oldUserData), len(newUserData)
	plan.Warnings = append(warnings, urlWarnings(o.Install)...)
	if plan.GroupVersion == "$Latest" {
		plan.Warnings = append(plan.Warnings, "the group uses $Latest: instances it launches from now on (scale-out, health replacements) get the new version at once, before the refresh reaches them")
	}
	if o.DryRun {
		return ASGResult{Plan: plan}, nil
	}
	if o.OnPlan != nil {
		o.OnPlan(plan)
	}

	created, err := ec2Client.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId:   source.LaunchTemplateId,
		SourceVersion:      awssdk.String(strconv.FormatInt(plan.SourceVersion, 10)),
		VersionDescription: awssdk.String(o.VersionDescription),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{
			UserData: awssdk.String(base64.StdEncoding.EncodeToString(newUserData)),
		},
	})
	if err != nil {
		return ASGResult{Plan: plan}, fmt.Errorf("create launch template version of %s: %s", plan.LaunchTemplateID, awsMessage(err))
	}
	plan.NewVersion = awssdk.ToInt64(created.LaunchTemplateVersion.VersionNumber)
	prog := newRefreshProgress(o.Progress)
	prog.Note(fmt.Sprintf("created launch template %s version %d from version %d", plan.LaunchTemplateID, plan.NewVersion, plan.SourceVersion))

	started, err := asClient.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
		AutoScalingGroupName: awssdk.String(o.Group),
		Strategy:             astypes.RefreshStrategyRolling,
		DesiredConfiguration: desiredConfiguration(group, plan),
		Preferences: &astypes.RefreshPreferences{
			MinHealthyPercentage: awssdk.Int32(o.MinHealthy),
			InstanceWarmup:       awssdk.Int32(o.InstanceWarmup),
			AutoRollback:         awssdk.Bool(!o.NoRollback),
			SkipMatching:         awssdk.Bool(true),
		},
	})
	if err != nil {
		var inProgress *astypes.InstanceRefreshInProgressFault
		if errors.As(err, &inProgress) {
			err = fmt.Errorf("%w on group %s (%s)", ErrRefreshInProgress, o.Group, awsMessage(err))
		} else {
			err = fmt.Errorf("start instance refresh of %s: %s", o.Group, awsMessage(err))
		}
		return ASGResult{Plan: plan}, fmt.Errorf("%w; launch template version %d was created but no instance uses it", err, plan.NewVersion)
	}
	plan.RefreshID = awssdk.ToString(started.InstanceRefreshId)
	prog.Note(fmt.Sprintf("started instance refresh %s of %s", plan.RefreshID, o.Group))
	res, err := followRefresh(ctx, asClient, o, plan.RefreshID, prog)
	res.Plan = plan
	return res, err
}

func describeGroup(ctx context.Context, client *autoscaling.Client, name string) (astypes.AutoScalingGroup, error) {
	out, err := client.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return astypes.AutoScalingGroup{}, fmt.Errorf("describe auto scaling group %s: %s", name, awsMessage(err))
	}
	if len(out.AutoScalingGroups) == 0 {
		return astypes.AutoScalingGroup{}, fmt.Errorf("auto scaling group %s not found in this region", name)
	}
	return out.AutoScalingGroups[0], nil
}

// groupTemplate returns the launch template the group launches from, and
// whether it comes from a mixed instances policy.
func groupTemplate(g astypes.AutoScalingGroup) (*astypes.LaunchTemplateSpecification, bool, error) {
	name := awssdk.ToString(g.AutoScalingGroupName)
	switch {
	case g.LaunchTemplate != nil:
		return g.LaunchTemplate, false, nil
	case g.MixedInstancesPolicy != nil && g.MixedInstancesPolicy.LaunchTemplate != nil && g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification != nil:
		return g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification, true, nil
	case g.LaunchConfigurationName != nil:
		return nil, false, fmt.Errorf("group %s uses launch configuration %s; drmfilter deploys through launch templates only (AWS no longer adds features to launch configurations: migrate the group to a launch template, or use 'drmfilter deploy aws ssm --tag aws:autoscaling:groupName=%s' for its running instances)", name, awssdk.ToString(g.LaunchConfigurationName), name)
	}
	return nil, false, fmt.Errorf("group %s has no launch template", name)
}

// checkNoRefresh fails when the group has a refresh that has not ended, so
// that no launch template version is created for nothing.
func checkNoRefresh(ctx context.Context, client *autoscaling.Client, group string) error {
	out, err := client.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: awssdk.String(group)})
	if err != nil {
		return fmt.Errorf("describe instance refreshes of %s: %s", group, awsMessage(err))
	}
	for _, r := range out.InstanceRefreshes {
		if !refreshEnded(r.Status) {
			return fmt.Errorf("%w on group %s: %s is %s; wait for it, or cancel it with: aws autoscaling cancel-instance-refresh --auto-scaling-group-name %s",
				ErrRefreshInProgress, group, awssdk.ToString(r.InstanceRefreshId), r.Status, group)
		}
	}
	return nil
}

func describeVersion(ctx context.Context, client *ec2.Client, spec *astypes.LaunchTemplateSpecification) (ec2types.LaunchTemplateVersion, error) {
	version := awssdk.ToString(spec.Version)
	if version == "" {
		version = "$Default"
	}
	in := &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{version}}
	what := awssdk.ToString(spec.LaunchTemplateId)
	if spec.LaunchTemplateId != nil {
		in.LaunchTemplateId = spec.LaunchTemplateId
	} else {
		in.LaunchTemplateName = spec.LaunchTemplateName
		what = awssdk.ToString(spec.LaunchTemplateName)
	}
	out, err := client.DescribeLaunchTemplateVersions(ctx, in)
	if err != nil {
		return ec2types.LaunchTemplateVersion{}, fmt.Errorf("describe launch template %s version %s: %s", what, version, awsMessage(err))
	}
	if len(out.LaunchTemplateVersions) != 1 {
		return ec2types.LaunchTemplateVersion{}, fmt.Errorf("launch template %s version %s: %d versions found, want 1", what, version, len(out.LaunchTemplateVersions))
	}
	return out.LaunchTemplateVersions[0], nil
}

// desiredConfiguration is the group's configuration with the launch
// template pointing at the new version. For a mixed instances policy the
// whole policy is repeated, as AWS replaces it as a whole.
func desiredConfiguration(g astypes.AutoScalingGroup, plan ASGPlan) *astypes.DesiredConfiguration {
	spec := &astypes.LaunchTemplateSpecification{
		LaunchTemplateId: awssdk.String(plan.LaunchTemplateID),
		Version:          awssdk.String(strconv.FormatInt(plan.NewVersion, 10)),
	}
	if !plan.MixedInstances {
		return &astypes.DesiredConfiguration{LaunchTemplate: spec}
	}
	policy := *g.MixedInstancesPolicy
	lt := *policy.LaunchTemplate
	lt.LaunchTemplateSpecification = spec
	policy.LaunchTemplate = &lt
	return &astypes.DesiredConfiguration{MixedInstancesPolicy: &policy}
}

// urlWarnings warns about URLs with query strings in user data: presigned
// URLs expire, and launch template user data is readable by anyone allowed
// ec2:DescribeLaunchTemplateVersions.
func urlWarnings(spec InstallSpec) []string {
	for _, u := range spec.URLs() {
		if hasQuery(u) {
			return []string{"a URL has a query string (a presigned URL?): it is stored in the launch template, readable by anyone allowed ec2:DescribeLaunchTemplateVersions, and instances launched after it expires fail to install; prefer URLs the instance role can read"}
		}
	}
	return nil
}
