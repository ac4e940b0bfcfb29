package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/drmfilter/drmfilter/internal/progress"
)

// DocumentName is the SSM document that runs the install: AWS's own shell
// script document, with parameters commands and executionTimeout.
const DocumentName = "AWS-RunShellScript"

// Default waiter backoff between GetCommandInvocation calls for one
// instance.
const (
	defaultWaitMinDelay = 5 * time.Second
	defaultWaitMaxDelay = 30 * time.Second
	// maxExecutionTimeout is AWS-RunShellScript's largest executionTimeout.
	maxExecutionTimeout = 48 * time.Hour
	// waiters bounds how many instances are waited on at once, so that a
	// large fleet does not exceed SSM's request rate.
	waiters = 8
)

// SSMOptions configure `deploy aws ssm`.
type SSMOptions struct {
	// Instances are explicit instance IDs; Tag ("KEY=VALUE") selects running
	// instances instead. Exactly one is set.
	Instances []string
	Tag       string
	Install   InstallSpec
	// Version goes into the command's comment ("drmfilter install <version>").
	Version string
	// MaxConcurrency and MaxErrors are SSM's rate controls: a number or a
	// percentage ("10%"). They apply to each SendCommand of up to 50
	// instances; after each, the rollout stops if more instances failed in
	// total than MaxErrors allows of all targets.
	MaxConcurrency string
	MaxErrors      string
	// Timeout bounds the whole rollout. It is also the command's delivery
	// timeout (TimeoutSeconds) and the script's executionTimeout, so that
	// SSM stops the script when drmfilter stops waiting.
	Timeout time.Duration
	DryRun  bool
	// WaitMinDelay and WaitMaxDelay bound the waiter's backoff; zero means
	// 5 s and 30 s.
	WaitMinDelay, WaitMaxDelay time.Duration
	// Progress receives progress lines (or a bar on a terminal).
	Progress io.Writer
}

// Statuses drmfilter gives an instance besides SSM's own (Success, Failed,
// TimedOut, Cancelled, and the details such as Undeliverable,
// DeliveryTimedOut, ExecutionTimedOut, InvalidPlatform).
const (
	StatusSkipped    = "Skipped"
	StatusNotSent    = "NotSent"
	StatusUnfinished = "Unfinished"
	StatusError      = "Error"
)

// InstanceResult is the outcome on one instance.
type InstanceResult struct {
	InstanceID string `json:"instanceId"`
	// Status is SSM's status detail when it has one, else its status, else
	// one of the Status* constants above.
	Status    string `json:"status"`
	Succeeded bool   `json:"succeeded"`
	// ExitCode is the script's exit code (SSM's ResponseCode; -1 when it
	// did not run), absent when SSM gave none.
	ExitCode *int32 `json:"exitCode,omitempty"`
	// Message says why an instance was skipped or not sent, or carries
	// AWS's error.
	Message string `json:"message,omitempty"`
	// StdoutTail and StderrTail are the last lines of the script's output.
	StdoutTail string `json:"stdoutTail,omitempty"`
	StderrTail string `json:"stderrTail,omitempty"`
	CommandID  string `json:"commandId,omitempty"`
}

// SSMReport is the whole rollout.
type SSMReport struct {
	DryRun bool `json:"dryRun,omitempty"`
	// Plan is filled in a dry run: what would be sent.
	Plan *SSMPlan `json:"plan,omitempty"`
	// Results has one entry per target instance, in instance ID order.
	Results []InstanceResult `json:"results"`
}

// SSMPlan is what SendCommand would be called with.
type SSMPlan struct {
	DocumentName   string     `json:"documentName"`
	Comment        string     `json:"comment"`
	Commands       []string   `json:"commands"`
	MaxConcurrency string     `json:"maxConcurrency"`
	MaxErrors      string     `json:"maxErrors"`
	TimeoutSeconds int32      `json:"timeoutSeconds"`
	Batches        [][]string `json:"batches"`
	Targets        []Target   `json:"targets"`
}

// Succeeded reports whether every target instance succeeded.
func (r SSMReport) Succeeded() bool {
	if len(r.Results) == 0 {
		return false
	}
	for _, res := range r.Results {
		if !res.Succeeded {
			return false
		}
	}
	return true
}

// rateValue is SSM's MaxConcurrency and MaxErrors syntax: a number or a
// percentage, without leading zeros.
var rateValue = regexp.MustCompile(`^(0|[1-9][0-9]*)(%?)$`)

// validate checks the options before any call.
func (o *SSMOptions) validate() error {
	if (len(o.Instances) == 0) == (o.Tag == "") {
		return errors.New("give either --instances or --tag")
	}
	if o.Tag != "" {
		if _, _, err := parseTag(o.Tag); err != nil {
			return err
		}
	}
	for _, id := range o.Instances {
		if id == "" {
			return errors.New("--instances has an empty instance ID")
		}
	}
	if err := o.Install.Validate(); err != nil {
		return err
	}
	if m := rateValue.FindStringSubmatch(o.MaxConcurrency); m == nil || m[1] == "0" || (m[2] == "%" && mustAtoi(m[1]) > 100) {
		return fmt.Errorf("--max-concurrency %q is not a number of at least 1 or a percentage from 1%% to 100%%", o.MaxConcurrency)
	}
	if m := rateValue.FindStringSubmatch(o.MaxErrors); m == nil || (m[2] == "%" && mustAtoi(m[1]) > 100) {
		return fmt.Errorf("--max-errors %q is not a number or a percentage from 0%% to 100%%", o.MaxErrors)
	}
	if o.Timeout < 30*time.Second || o.Timeout > maxExecutionTimeout {
		return fmt.Errorf("--timeout %s is not between 30s and 48h (SSM's limits for the delivery and execution timeouts)", o.Timeout)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.WaitMinDelay <= 0 {
		o.WaitMinDelay = defaultWaitMinDelay
	}
	if o.WaitMaxDelay < o.WaitMinDelay {
		o.WaitMaxDelay = max(defaultWaitMaxDelay, o.WaitMinDelay)
	}
	return nil
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 1 << 30
	}
	return n
}

// allowedErrors is how many failed instances MaxErrors allows of total.
func allowedErrors(maxErrors string, total int) int {
	m := rateValue.FindStringSubmatch(maxErrors)
	n := mustAtoi(m[1])
	if m[2] == "%" {
		return total * n / 100
	}
	return n
}

// RunSSM installs drmfilter on EC2 instances with SSM Run Command: it
// resolves and checks the targets, sends AWS-RunShellScript to them in
// batches of at most 50, waits for every instance with the SDK's
// CommandExecuted waiter, and returns one result per instance. Only
// Describe* calls are made in a dry run. The error is for failures that
// concern the whole rollout (bad options, no targets, credentials); failed
// instances are in the report.
func RunSSM(ctx context.Context, cfg awssdk.Config, o SSMOptions) (SSMReport, error) {
	if err := o.validate(); err != nil {
		return SSMReport{}, &OptionError{err}
	}
	deadline := time.Now().Add(o.Timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ssmClient := ssm.NewFromConfig(cfg)

	ids := dedupe(o.Instances)
	if o.Tag != "" {
		key, value, _ := parseTag(o.Tag)
		var err error
		if ids, err = instancesByTag(ctx, ec2.NewFromConfig(cfg), key, value); err != nil {
			return SSMReport{}, err
		}
		if len(ids) == 0 {
			return SSMReport{}, fmt.Errorf("no running instance has tag %s", o.Tag)
		}
	}
	targets, err := classify(ctx, ssmClient, ids)
	if err != nil {
		return SSMReport{}, err
	}
	var send []string
	report := SSMReport{DryRun: o.DryRun, Results: []InstanceResult{}}
	for _, t := range targets {
		if t.Skip != "" {
			report.Results = append(report.Results, InstanceResult{InstanceID: t.InstanceID, Status: StatusSkipped, Message: t.Skip})
			continue
		}
		send = append(send, t.InstanceID)
	}
	timeoutSeconds := int32(o.Timeout / time.Second)
	comment := "drmfilter install " + o.Version
	if len(comment) > 100 {
		comment = comment[:100]
	}
	if o.DryRun {
		report.Plan = &SSMPlan{
			DocumentName: DocumentName, Comment: comment, Commands: redactAll(o.Install.Commands()),
			MaxConcurrency: o.MaxConcurrency, MaxErrors: o.MaxErrors, TimeoutSeconds: timeoutSeconds,
			Batches: slices.Collect(slices.Chunk(send, maxInstanceIDs)), Targets: targets,
		}
		return report, nil
	}
	if len(send) == 0 {
		sortResults(report.Results)
		return report, errors.New("no instance can receive the command (see the reasons above)")
	}

	prog := progress.New(o.Progress, len(send), "instances")
	defer prog.Done()
	allowed := allowedErrors(o.MaxErrors, len(send))
	failed := 0
	batches := slices.Collect(slices.Chunk(send, maxInstanceIDs))
	for i, batch := range batches {
		if failed > allowed {
			for _, b := range batches[i:] {
				for _, id := range b {
					report.Results = append(report.Results, InstanceResult{InstanceID: id, Status: StatusNotSent,
						Message: fmt.Sprintf("not sent: %d instances failed, more than --max-errors %s allows", failed, o.MaxErrors)})
				}
			}
			break
		}
		out, err := ssmClient.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: awssdk.String(DocumentName),
			InstanceIds:  batch,
			Parameters: map[string][]string{
				"commands":         o.Install.Commands(),
				"executionTimeout": {strconv.Itoa(int(timeoutSeconds))},
			},
			Comment:        awssdk.String(comment),
			MaxConcurrency: awssdk.String(o.MaxConcurrency),
			MaxErrors:      awssdk.String(o.MaxErrors),
			TimeoutSeconds: awssdk.Int32(timeoutSeconds),
		})
		if err == nil && (out.Command == nil || out.Command.CommandId == nil) {
			err = errors.New("SendCommand answered without a command ID")
		}
		if err != nil {
			msg := "send command: " + awsMessage(err)
			for _, b := range batches[i:] {
				for _, id := range b {
					report.Results = append(report.Results, InstanceResult{InstanceID: id, Status: StatusNotSent, Message: msg})
				}
			}
			prog.Note(msg)
			break
		}
		commandID := awssdk.ToString(out.Command.CommandId)
		prog.Note(fmt.Sprintf("sent command %s to %d instances", commandID, len(batch)))
		results := waitAll(ctx, ssmClient, commandID, batch, deadline, o, prog)
		for _, r := range results {
			if !r.Succeeded {
				failed++
			}
		}
		report.Results = append(report.Results, results...)
	}
	sortResults(report.Results)
	return report, nil
}

func dedupe(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func sortResults(rs []InstanceResult) {
	slices.SortFunc(rs, func(a, b InstanceResult) int { return strings.Compare(a.InstanceID, b.InstanceID) })
}

// waitAll waits for the command on every instance of batch, a few at a
// time.
func waitAll(ctx context.Context, client *ssm.Client, commandID string, batch []string, deadline time.Time, o SSMOptions, prog *progress.Reporter) []InstanceResult {
	results := make([]InstanceResult, len(batch))
	sem := make(chan struct{}, waiters)
	var wg sync.WaitGroup
	for i, id := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = waitOne(ctx, client, commandID, id, deadline, o)
			msg := fmt.Sprintf("%s %s", id, results[i].Status)
			if results[i].ExitCode != nil {
				msg += fmt.Sprintf(" (exit %d)", *results[i].ExitCode)
			}
			prog.Step(1, msg)
		}()
	}
	wg.Wait()
	return results
}

// waitOne waits with the SDK's CommandExecuted waiter, which retries while
// the invocation does not exist yet (right after SendCommand) and while it
// is Pending, InProgress or Delayed. Its Retryable is replaced so that
// every end state, failures included, returns the invocation: the default
// one turns Failed, TimedOut and Cancelled into a bare error.
func waitOne(ctx context.Context, client *ssm.Client, commandID, instanceID string, deadline time.Time, o SSMOptions) InstanceResult {
	res := InstanceResult{InstanceID: instanceID, CommandID: commandID}
	waiter := ssm.NewCommandExecutedWaiter(client, func(w *ssm.CommandExecutedWaiterOptions) {
		w.MinDelay, w.MaxDelay = o.WaitMinDelay, o.WaitMaxDelay
		w.Retryable = commandDone
	})
	remaining := time.Until(deadline)
	var out *ssm.GetCommandInvocationOutput
	err := errors.New("no time left")
	if remaining > 0 {
		out, err = waiter.WaitForOutput(ctx, &ssm.GetCommandInvocationInput{
			CommandId: awssdk.String(commandID), InstanceId: awssdk.String(instanceID),
		}, remaining)
	}
	var apiErr smithy.APIError
	switch {
	case err == nil:
	case ctx.Err() != nil || (!errors.As(err, &apiErr) && time.Until(deadline) < o.WaitMinDelay):
		res.Status = StatusUnfinished
		res.Message = fmt.Sprintf("no result within --timeout %s; the script stops at the same timeout (executionTimeout). Follow it with: aws ssm get-command-invocation --command-id %s --instance-id %s", o.Timeout, commandID, instanceID)
		return res
	default:
		res.Status, res.Message = StatusError, awsMessage(err)
		return res
	}
	res.Status = string(out.Status)
	if d := awssdk.ToString(out.StatusDetails); d != "" {
		res.Status = d
	}
	res.Succeeded = out.Status == ssmtypes.CommandInvocationStatusSuccess
	code := out.ResponseCode
	res.ExitCode = &code
	res.StdoutTail = Redact(tail(awssdk.ToString(out.StandardOutputContent), tailLines))
	res.StderrTail = Redact(tail(awssdk.ToString(out.StandardErrorContent), tailLines))
	return res
}

// commandDone is the waiter's Retryable: keep waiting while the invocation
// is missing or still running, stop with the output in any end state.
func commandDone(_ context.Context, _ *ssm.GetCommandInvocationInput, out *ssm.GetCommandInvocationOutput, err error) (bool, error) {
	if err != nil {
		var missing *ssmtypes.InvocationDoesNotExist
		if errors.As(err, &missing) {
			return true, nil
		}
		return false, err
	}
	switch out.Status {
	case ssmtypes.CommandInvocationStatusPending, ssmtypes.CommandInvocationStatusInProgress,
		ssmtypes.CommandInvocationStatusDelayed, ssmtypes.CommandInvocationStatusCancelling:
		return true, nil
	}
	return false, nil
}

// tailLines is how many lines of stdout and of stderr a result keeps.
const tailLines = 10

// tail returns the last n non-empty-trailing lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n\r\t ")
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// awsMessage is an AWS error as "Code: message", redacted, without the SDK's
// operation and request-ID wrapping.
func awsMessage(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return Redact(apiErr.ErrorCode() + ": " + apiErr.ErrorMessage())
	}
	return Redact(err.Error())
}
