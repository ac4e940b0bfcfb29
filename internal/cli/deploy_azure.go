//go:build !nodeploy

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/deploy/azure"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/version"
)

// azureEnvKey is the context key under which tests hand `deploy azure` an
// azure.Env wired to the armcompute fake servers. Production never sets
// it, so the commands use DefaultAzureCredential and the real endpoints.
type azureEnvKey struct{}

func azureEnvFrom(ctx context.Context, s Streams) azure.Env {
	if env, ok := ctx.Value(azureEnvKey{}).(azure.Env); ok {
		return env
	}
	return azure.Env{Logger: slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))}
}

// azureFlags are the flags vm and vmss share.
type azureFlags struct {
	target  azure.Target
	install azure.Install
	timeout time.Duration
	dryRun  bool
	output  string
}

func (f *azureFlags) register(cmd *cobra.Command, timeout time.Duration) {
	fl := cmd.Flags()
	fl.StringVar(&f.target.Subscription, "subscription", os.Getenv("AZURE_SUBSCRIPTION_ID"), "subscription ID (default $AZURE_SUBSCRIPTION_ID)")
	fl.StringVarP(&f.target.ResourceGroup, "resource-group", "g", "", "resource group")
	fl.StringVarP(&f.target.Name, "name", "n", "", "name of the VM or scale set")
	fl.StringVar(&f.install.PackageURL, "package-url", "", "URL of the drmfilter .deb or .rpm the machines download (a SAS URL is kept secret)")
	fl.StringVar(&f.install.SHA256, "sha256", "", "SHA-256 of the package, 64 hex digits")
	fl.StringVar(&f.install.ScriptURL, "script-url", "", "URL of install.sh (default: scripts/install.sh of this release on GitHub)")
	fl.StringArrayVar(&f.install.PolicyURLs, "policy-url", nil, "URL of a policy file to install (repeatable)")
	fl.StringVar(&f.install.Mode, "mode", "", "agent mode: audit or enforce (default: the package's)")
	fl.StringVar(&f.install.ExtensionName, "extension-name", azure.DefaultExtensionName, "name of the Custom Script extension resource")
	fl.DurationVar(&f.timeout, "timeout", timeout, "give up after this long")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan (after reading the target) and change nothing")
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	for _, name := range []string{"resource-group", "name", "package-url", "sha256"} {
		_ = cmd.MarkFlagRequired(name)
	}
}

func (f *azureFlags) validate() error {
	if f.output != "table" && f.output != "json" {
		return fmt.Errorf("unknown output format %q (want table or json)", f.output)
	}
	if f.target.Subscription == "" {
		return errors.New("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
	}
	if f.timeout <= 0 {
		return errors.New("--timeout: must be positive")
	}
	f.install.SHA256 = strings.ToLower(f.install.SHA256)
	if f.install.ScriptURL == "" {
		u, err := version.InstallScriptURL(version.Get().Version)
		if err != nil {
			return err
		}
		f.install.ScriptURL = u
	}
	return f.install.Validate()
}

// azureCode maps an error from package azure to an exit code.
func azureCode(err error) error {
	if errors.Is(err, azure.ErrUnsupported) {
		return withCode(exitcode.Unsupported, err)
	}
	return withCode(exitcode.Failure, err)
}

func newDeployAzureCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "azure",
		Short: "Install drmfilter on Azure Linux VMs and scale sets (Custom Script extension)",
		Long: `Install drmfilter on Azure Linux machines through the Custom Script extension
(Microsoft.Azure.Extensions/CustomScript 2.1), which downloads install.sh and
runs it with the package URL and its SHA-256. The package and script URLs go
in the extension's protected settings and are printed with their query
strings (SAS tokens) redacted.

Credentials come from DefaultAzureCredential: environment variables, workload
identity, managed identity, or 'az login'. The identity needs the Virtual
Machine Contributor role on the VM, scale set or resource group.`,
	}
	cmd.AddCommand(newDeployAzureVMCommand(s), newDeployAzureVMSSCommand(s))
	return cmd
}

func newDeployAzureVMCommand(s Streams) *cobra.Command {
	var f azureFlags
	cmd := &cobra.Command{
		Use:   "vm",
		Short: "Install drmfilter on one Linux VM and report the extension's status and output",
		Example: `  drmfilter deploy azure vm --subscription $SUB -g prod -n web-1 \
      --package-url "https://acct.blob.core.windows.net/pkg/drmfilter.deb?sv=..." \
      --sha256 $(sha256sum drmfilter.deb | cut -d' ' -f1) --mode audit`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return withCode(exitcode.Usage, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			env := azureEnvFrom(cmd.Context(), s)
			if f.dryRun {
				plan, err := azure.PlanVM(ctx, env, f.target, f.install)
				if err != nil {
					return azureCode(err)
				}
				return writePlan(s.Out, f.output, plan)
			}
			res, err := azure.DeployVM(ctx, env, f.target, f.install)
			if err != nil {
				return azureCode(err)
			}
			if err := writeVMResult(s.Out, f.output, res); err != nil {
				return err
			}
			if !res.OK() {
				return withCode(exitcode.Failure, fmt.Errorf("VM %s: installation %s", res.Name, res.Result))
			}
			return nil
		},
	}
	f.register(cmd, 15*time.Minute)
	return cmd
}

func newDeployAzureVMSSCommand(s Streams) *cobra.Command {
	var (
		f           azureFlags
		batchSize   int
		maxFailures int
		stateFile   string
		resume      bool
	)
	cmd := &cobra.Command{
		Use:   "vmss",
		Short: "Install drmfilter on a Linux scale set (Manual upgrade policy), in batches",
		Long: `vmss sets the Custom Script extension in the scale set model, then upgrades the
instances --batch-size at a time. After each batch it reads every instance's
extension status; it stops after the batch in which more than --max-failures
instances have failed. Progress is saved after every batch in a state file
(--state-file, by default under your cache directory), and --resume skips the
instances that already succeeded with the same package.

The scale set must use Uniform orchestration and a Manual upgrade policy:
with Automatic or Rolling, Azure upgrades the instances itself.`,
		Example: `  drmfilter deploy azure vmss --subscription $SUB -g prod -n web \
      --package-url "https://acct.blob.core.windows.net/pkg/drmfilter.deb?sv=..." \
      --sha256 $SHA --batch-size 5 --max-failures 1 --dry-run
  drmfilter deploy azure vmss ... --resume     # after fixing what stopped it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return withCode(exitcode.Usage, err)
			}
			req := azure.ScaleSetRequest{Target: f.target, Install: f.install, BatchSize: batchSize, MaxFailures: maxFailures, StateFile: stateFile, Resume: resume, Progress: s.Err}
			if err := req.Validate(); err != nil {
				return withCode(exitcode.Usage, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			env := azureEnvFrom(cmd.Context(), s)
			if f.dryRun {
				plan, err := azure.PlanScaleSet(ctx, env, req)
				if err != nil {
					return azureCode(err)
				}
				return writePlan(s.Out, f.output, plan)
			}
			rep, err := azure.DeployScaleSet(ctx, env, req)
			if err != nil {
				return azureCode(err)
			}
			if err := writeScaleSetReport(s.Out, f.output, rep); err != nil {
				return err
			}
			if rep.OK() {
				return nil
			}
			failed := 0
			for _, r := range rep.Results {
				if !r.OK() {
					failed++
				}
			}
			msg := fmt.Sprintf("%d of %d instances did not succeed", failed, len(rep.Results))
			if rep.Stopped != "" {
				msg = rep.Stopped + "; " + msg
			}
			return withCode(exitcode.Failure, fmt.Errorf("%s. Fix the cause, then run the same command with --resume --state-file %s to continue with the instances that have not succeeded", msg, rep.StateFile))
		},
	}
	f.register(cmd, time.Hour)
	cmd.Flags().IntVar(&batchSize, "batch-size", 5, "instances upgraded at once")
	cmd.Flags().IntVar(&maxFailures, "max-failures", 0, "failed instances tolerated before the rollout stops")
	cmd.Flags().StringVar(&stateFile, "state-file", "", "progress file for --resume (default: drmfilter/azure-vmss-<subscription>_<group>_<name>.json under the user cache directory)")
	cmd.Flags().BoolVar(&resume, "resume", false, "skip instances the state file says succeeded with the same package")
	return cmd
}

func writePlan(w io.Writer, output string, p *azure.Plan) error {
	if output == "json" {
		return writeJSON(w, p)
	}
	return p.WriteText(w)
}

func writeVMResult(w io.Writer, output string, r azure.Result) error {
	if output == "json" {
		return writeJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VM\tRESULT\tMESSAGE")
	fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.Result, r.Message)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range []struct{ name, text string }{{"stdout", r.Stdout}, {"stderr", r.Stderr}} {
		if o.text == "" {
			continue
		}
		fmt.Fprintf(w, "\n%s (tail):\n", o.name)
		for _, l := range lastLines(o.text, 10) {
			fmt.Fprintln(w, "  "+l)
		}
	}
	return nil
}

func writeScaleSetReport(w io.Writer, output string, rep *azure.ScaleSetReport) error {
	if output == "json" {
		return writeJSON(w, rep)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tNAME\tRESULT\tMESSAGE")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.InstanceID, r.Name, r.Result, r.Tail())
	}
	return tw.Flush()
}

func lastLines(s string, n int) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
