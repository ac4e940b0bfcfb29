//go:build !nodeploy

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	awsdeploy "github.com/drmfilter/drmfilter/internal/deploy/aws"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/version"
)

// awsEnv is what `deploy aws` takes from outside the command line: where
// the SDK configuration comes from and how long the waits between polls
// are. Production uses awsdeploy.LoadConfig (the SDK's default chain) and
// the package's delays; tests put an awsEnv in the context given to Main
// (key awsEnvKey) to talk to a loopback fake without delays.
type awsEnv struct {
	loadConfig awsdeploy.ConfigLoader
	// pollMinDelay and pollMaxDelay, if set, bound the waits of both
	// subcommands (SSM waiter, instance refresh polling).
	pollMinDelay, pollMaxDelay time.Duration
}

type awsEnvKey struct{}

func awsEnvFrom(ctx context.Context) awsEnv {
	if env, ok := ctx.Value(awsEnvKey{}).(awsEnv); ok {
		return env
	}
	return awsEnv{loadConfig: awsdeploy.LoadConfig}
}

// awsFlags are the flags ssm and asg share.
type awsFlags struct {
	region, profile string
	install         awsdeploy.InstallSpec
	timeout         time.Duration
	dryRun          bool
	output          string
}

func (f *awsFlags) register(cmd *cobra.Command, timeout time.Duration) {
	fl := cmd.Flags()
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	fl.StringVar(&f.profile, "profile", "", "shared config profile (default: AWS_PROFILE or default)")
	fl.StringVar(&f.install.PackageURL, "package-url", "", "URL of the drmfilter .deb or .rpm the machines download (a presigned URL's query is never printed)")
	fl.StringVar(&f.install.SHA256, "sha256", "", "SHA-256 of the package, 64 hex digits")
	fl.StringVar(&f.install.ScriptURL, "script-url", "", "URL of install.sh (default: scripts/install.sh of this release on GitHub)")
	fl.StringArrayVar(&f.install.PolicyURLs, "policy-url", nil, "URL of a policy file to install (repeatable)")
	fl.StringVar(&f.install.Mode, "mode", "", "agent mode: audit or enforce (default: the package's)")
	fl.DurationVar(&f.timeout, "timeout", timeout, "stop waiting after this long")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing (only Describe calls are made)")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	for _, name := range []string{"package-url", "sha256"} {
		_ = cmd.MarkFlagRequired(name)
	}
}

// start checks the flags and loads the SDK configuration, as both
// subcommands begin; the errors carry their exit codes.
func (f *awsFlags) start(ctx context.Context) (awsEnv, awssdk.Config, error) {
	if err := f.validate(); err != nil {
		return awsEnv{}, awssdk.Config{}, withCode(exitcode.Usage, err)
	}
	env := awsEnvFrom(ctx)
	cfg, err := env.loadConfig(ctx, f.region, f.profile)
	if err != nil {
		return awsEnv{}, awssdk.Config{}, withCode(exitcode.Failure, err)
	}
	return env, cfg, nil
}

func (f *awsFlags) validate() error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("unknown output format %q (want table or json)", f.output)
	}
	f.install.SHA256 = strings.ToLower(f.install.SHA256)
	if f.install.ScriptURL == "" {
		u, err := version.InstallScriptURL(version.Get().Version)
		if err != nil {
			return err
		}
		f.install.ScriptURL = u
	}
	return nil
}

// awsCode maps an error from package awsdeploy to an exit code.
func awsCode(err error) error {
	var oe *awsdeploy.OptionError
	if errors.As(err, &oe) {
		return withCode(exitcode.Usage, err)
	}
	return withCode(exitcode.Failure, err)
}

func newDeployAWSCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "Install drmfilter on EC2 instances (SSM Run Command) and Auto Scaling groups (instance refresh)",
		Long: `Install drmfilter on Amazon EC2 Linux instances with scripts/install.sh.

  drmfilter deploy aws ssm   running instances, through Systems Manager Run Command
  drmfilter deploy aws asg   an Auto Scaling group: a new launch template version
                             whose user data installs drmfilter, then an instance refresh

Credentials and region come from the SDK's default chain: environment
variables, the shared config and credentials files (--profile), SSO, web
identity, or the instance role. --region overrides the region.

The package URL may be a presigned S3 URL: its query string is printed as
?<redacted>. It is visible to whoever can read the SSM command or the launch
template, though, so prefer short-lived URLs, or a bucket the instance role
can read.`,
	}
	cmd.AddCommand(newDeployAWSSSMCommand(s), newDeployAWSASGCommand(s))
	return cmd
}

func newDeployAWSSSMCommand(s Streams) *cobra.Command {
	var f awsFlags
	var o awsdeploy.SSMOptions
	cmd := &cobra.Command{
		Use:   "ssm (--instances ID,... | --tag KEY=VALUE) --package-url URL --sha256 HEX",
		Short: "Install drmfilter on running instances with SSM Run Command and wait for each",
		Long: `Install drmfilter on running EC2 Linux instances with SSM Run Command
(document AWS-RunShellScript): the command downloads install.sh with curl
and runs it with the package URL, its SHA-256, the policy URLs and the mode.

Targets are --instances, or the running instances with tag --tag KEY=VALUE.
Before sending, SSM is asked which of them are managed nodes: instances
without a registered SSM agent, not running Linux, or whose agent is not
online are skipped and listed with the reason (they count as not succeeded).
The command goes out in batches of at most 50 instances (SSM's limit);
--max-concurrency and --max-errors apply within each, and no further batch is
sent once more instances have failed than --max-errors allows of all targets.

drmfilter waits for every instance (SSM's CommandExecuted waiter) up to
--timeout, which is also the script's execution timeout, and prints one row
per instance: status (Success, Failed, ExecutionTimedOut, Undeliverable, ...),
exit code and the last line of output, then the output of every instance that
did not succeed.

Permissions: ssm:DescribeInstanceInformation, ssm:SendCommand (on the
document AWS-RunShellScript and the instances), ssm:GetCommandInvocation, and
ec2:DescribeInstances for --tag. The instances need the SSM agent, an instance
profile that lets it register (AmazonSSMManagedInstanceCore), and HTTPS access
to the script and package URLs.

Exit codes: 0 every instance succeeded, 1 any did not (or AWS refused the
request; the message is AWS's), 2 wrong flags.`,
		Example: `  drmfilter deploy aws ssm --tag Role=web --region eu-west-1 \
      --package-url "https://bucket.s3.eu-west-1.amazonaws.com/drmfilter_1.2.3_amd64.deb?X-Amz-..." \
      --sha256 $(sha256sum drmfilter_1.2.3_amd64.deb | cut -d' ' -f1) --mode audit
  drmfilter deploy aws ssm --instances i-0abc,i-0def --package-url ... --sha256 ... --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, cfg, err := f.start(cmd.Context())
			if err != nil {
				return err
			}
			o.Install, o.Timeout, o.DryRun, o.Progress = f.install, f.timeout, f.dryRun, s.Err
			o.Version = version.Get().Version
			o.WaitMinDelay, o.WaitMaxDelay = env.pollMinDelay, env.pollMaxDelay
			rep, err := awsdeploy.RunSSM(cmd.Context(), cfg, o)
			if err != nil {
				if len(rep.Results) > 0 {
					_ = writeSSMReport(s.Out, f.output, rep)
				}
				return awsCode(err)
			}
			if err := writeSSMReport(s.Out, f.output, rep); err != nil {
				return withCode(exitcode.Failure, err)
			}
			if !rep.DryRun && !rep.Succeeded() {
				failed := 0
				for _, r := range rep.Results {
					if !r.Succeeded {
						failed++
					}
				}
				return withCode(exitcode.Failure, fmt.Errorf("%d of %d instances did not succeed", failed, len(rep.Results)))
			}
			return nil
		},
	}
	f.register(cmd, 15*time.Minute)
	fl := cmd.Flags()
	fl.StringSliceVar(&o.Instances, "instances", nil, "instance IDs, comma-separated")
	fl.StringVar(&o.Tag, "tag", "", "select the running instances with this tag: KEY=VALUE")
	fl.StringVar(&o.MaxConcurrency, "max-concurrency", "10%", "instances running the command at once: a number or a percentage")
	fl.StringVar(&o.MaxErrors, "max-errors", "1", "failed instances SSM tolerates before it stops sending the command: a number or a percentage")
	cmd.MarkFlagsMutuallyExclusive("instances", "tag")
	cmd.MarkFlagsOneRequired("instances", "tag")
	return cmd
}

func writeSSMReport(w io.Writer, output string, rep awsdeploy.SSMReport) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	if rep.DryRun {
		return awsdeploy.WriteSSMPlan(w, rep)
	}
	return awsdeploy.WriteSSMTable(w, rep)
}

func newDeployAWSASGCommand(s Streams) *cobra.Command {
	var f awsFlags
	var o awsdeploy.ASGOptions
	cmd := &cobra.Command{
		Use:   "asg --group NAME --package-url URL --sha256 HEX",
		Short: "Install drmfilter on an Auto Scaling group: new launch template version, then an instance refresh",
		Long: `Install drmfilter on every instance of an Auto Scaling group by replacing
them, so that instances launched later have it too.

1. The group's launch template (its LaunchTemplate, or the one of its mixed
   instances policy) is read at the version the group uses. Groups with a
   launch configuration are refused.
2. A new version is created from it (CreateLaunchTemplateVersion with
   SourceVersion) whose user data is the old one plus the install step:
   appended to a shell script, added as a part to MIME multipart user data,
   and for cloud-config and other cloud-init formats the old user data and
   the install script become the two parts of a new multipart document.
   A step left by an earlier deploy is replaced, not repeated.
3. An instance refresh starts with the new version as its desired
   configuration (the group itself is switched only when the refresh
   succeeds), --min-healthy, --instance-warmup, SkipMatching, and
   AutoRollback unless --no-rollback. AWS cannot roll back a group that
   uses $Latest or $Default: such groups need --no-rollback.
4. The refresh is followed to its end with its percentage complete.

If a refresh is already running the command stops before creating anything.
If --timeout passes, the refresh is left running and the command prints how
to follow, cancel or roll it back.

Permissions: autoscaling:DescribeAutoScalingGroups,
autoscaling:DescribeInstanceRefreshes, autoscaling:StartInstanceRefresh,
ec2:DescribeLaunchTemplateVersions, ec2:CreateLaunchTemplateVersion, and what
AWS checks when a group is given a launch template: ec2:RunInstances,
iam:PassRole for the template's instance profile, ec2:CreateTags if it tags
instances.

Exit codes: 0 the refresh succeeded, 1 it failed, was cancelled or rolled
back, timed out, or AWS refused a request (the message is AWS's), 2 wrong
flags.`,
		Example: `  drmfilter deploy aws asg --group web-asg --region us-east-1 \
      --package-url https://downloads.example.com/drmfilter_1.2.3_amd64.deb --sha256 ... --mode enforce
  drmfilter deploy aws asg --group web-asg --package-url ... --sha256 ... --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, cfg, err := f.start(cmd.Context())
			if err != nil {
				return err
			}
			o.Install, o.Timeout, o.DryRun, o.Progress = f.install, f.timeout, f.dryRun, s.Err
			o.Version = version.Get().Version
			o.PollMinDelay, o.PollMaxDelay = env.pollMinDelay, env.pollMaxDelay
			if f.output == "table" {
				o.OnPlan = func(p awsdeploy.ASGPlan) { _ = awsdeploy.WriteASGPlan(s.Out, p, false) }
			}
			res, err := awsdeploy.RunASG(cmd.Context(), cfg, o)
			var oe *awsdeploy.OptionError
			if errors.As(err, &oe) {
				return withCode(exitcode.Usage, err)
			}
			if werr := writeASGResult(s.Out, f.output, res, f.dryRun); werr != nil && err == nil {
				err = werr
			}
			if err != nil {
				return withCode(exitcode.Failure, err)
			}
			return nil
		},
	}
	f.register(cmd, 60*time.Minute)
	fl := cmd.Flags()
	fl.StringVar(&o.Group, "group", "", "name of the Auto Scaling group")
	fl.Int32Var(&o.MinHealthy, "min-healthy", 90, "percentage of the group kept in service during the refresh")
	fl.Int32Var(&o.InstanceWarmup, "instance-warmup", 300, "seconds a new instance warms up before the next one is replaced")
	fl.StringVar(&o.VersionDescription, "launch-template-version-description", "", `description of the new launch template version (default "drmfilter install <version>")`)
	fl.BoolVar(&o.NoRollback, "no-rollback", false, "do not roll the group back when the refresh fails")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

func writeASGResult(w io.Writer, output string, res awsdeploy.ASGResult, dryRun bool) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(res)
	}
	if dryRun {
		if res.Plan.LaunchTemplateID == "" {
			return nil
		}
		return awsdeploy.WriteASGPlan(w, res.Plan, true)
	}
	if res.Plan.RefreshID == "" {
		return nil
	}
	_, err := fmt.Fprintf(w, "\ninstance refresh %s of %s: %s, %d%% complete (launch template %s version %d)\n",
		res.Plan.RefreshID, res.Plan.Group, res.Status, res.PercentageComplete, res.Plan.LaunchTemplateID, res.Plan.NewVersion)
	return err
}
