package aws

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteSSMTable prints one row per instance (instance, status, exit code,
// last line of output), then the output tails of every instance that did
// not succeed, then a summary line.
func WriteSSMTable(w io.Writer, r SSMReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tSTATUS\tEXIT\tOUTPUT")
	for _, res := range r.Results {
		code := "-"
		if res.ExitCode != nil {
			code = fmt.Sprint(*res.ExitCode)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.InstanceID, res.Status, code, clip(lastLine(res), 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ok := 0
	for _, res := range r.Results {
		if res.Succeeded {
			ok++
			continue
		}
		fmt.Fprintf(w, "\n%s: %s\n", res.InstanceID, res.Status)
		if res.Message != "" {
			fmt.Fprintf(w, "  %s\n", res.Message)
		}
		writeIndented(w, "stdout", res.StdoutTail)
		writeIndented(w, "stderr", res.StderrTail)
	}
	_, err := fmt.Fprintf(w, "\n%d of %d instances succeeded\n", ok, len(r.Results))
	return err
}

// WriteSSMPlan prints what a dry run found and would send (the plan's
// commands are already redacted).
func WriteSSMPlan(w io.Writer, r SSMReport) error {
	p := r.Plan
	fmt.Fprintln(w, "Dry run: nothing was changed (only DescribeInstances and DescribeInstanceInformation were called).")
	fmt.Fprintln(w, "\nTargets:")
	for _, t := range p.Targets {
		switch {
		case t.Skip != "":
			fmt.Fprintf(w, "  %s  skip: %s\n", t.InstanceID, t.Skip)
		default:
			fmt.Fprintf(w, "  %s  %s\n", t.InstanceID, t.Platform)
		}
	}
	fmt.Fprintf(w, "\nWould call ssm:SendCommand %d time(s), one per batch of at most %d instances:\n", len(p.Batches), maxInstanceIDs)
	for i, b := range p.Batches {
		fmt.Fprintf(w, "  batch %d: %s\n", i+1, strings.Join(b, ","))
	}
	fmt.Fprintf(w, "  DocumentName    %s\n", p.DocumentName)
	fmt.Fprintf(w, "  Comment         %s\n", p.Comment)
	fmt.Fprintf(w, "  MaxConcurrency  %s\n", p.MaxConcurrency)
	fmt.Fprintf(w, "  MaxErrors       %s\n", p.MaxErrors)
	fmt.Fprintf(w, "  TimeoutSeconds  %d (also executionTimeout)\n", p.TimeoutSeconds)
	fmt.Fprintln(w, "  commands:")
	for _, c := range p.Commands {
		fmt.Fprintf(w, "    %s\n", c)
	}
	return nil
}

func lastLine(r InstanceResult) string {
	text := r.StdoutTail
	if !r.Succeeded && r.StderrTail != "" {
		text = r.StderrTail
	}
	if text == "" {
		text = r.Message
	}
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	return strings.TrimSpace(text)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func writeIndented(w io.Writer, label, text string) {
	if text == "" {
		return
	}
	fmt.Fprintf(w, "  %s:\n", label)
	for line := range strings.SplitSeq(text, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}
