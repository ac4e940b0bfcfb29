// Package cli holds drmfilter's command line: one cobra command per file,
// all built fresh by NewRootCommand so that tests run them in-process with
// their own streams and no shared state.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// Streams are the standard streams a command reads and writes.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// exitError carries the exit code a command wants, with an optional message.
// A nil err means the command already printed what it had to say.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err so that Main exits with code.
func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// Main runs drmfilter with args and returns the process exit code.
func Main(ctx context.Context, args []string, s Streams) int {
	root := NewRootCommand(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitcode.OK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(s.Err, "drmfilter:", ee.err)
		}
		return ee.code
	}
	// Anything else cobra returns is a command-line mistake (unknown flag,
	// wrong number of arguments).
	fmt.Fprintln(s.Err, "drmfilter:", err)
	fmt.Fprintln(s.Err, "Run 'drmfilter --help' for usage.")
	return exitcode.Usage
}

// NewRootCommand builds the whole command tree.
func NewRootCommand(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "drmfilter",
		Short: "File protection for Linux: decide who may open, execute and read protected files",
		Long: `drmfilter protects files on Linux by policy. Policies are YAML documents
(apiVersion drmfilter.dev/v1, kind ProtectionPolicy) that say which files are
protected, and which programs, users, containers and pods may open, execute or
read them.

Start with:
  drmfilter policy check examples/                 validate policies
  drmfilter policy explain --policy examples/finance-docs.yaml \
      --path /srv/finance/q3.xlsx --exe /usr/bin/cat
                                                   see a decision and why`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddCommand(
		newVersionCommand(s),
		newPolicyCommand(s),
		newEnvCommand(s),
		newRunCommand(s),
		newStatusCommand(s),
		newStopCommand(s),
		newReloadCommand(s),
		newConfigCommand(s),
		newUpgradeCommand(s),
	)
	root.AddCommand(fleetCommands(s)...)
	return root
}
