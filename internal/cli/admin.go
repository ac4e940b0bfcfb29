package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/drmfilter/drmfilter/internal/agent"
	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/signs"
)

type adminFlags struct {
	socket  string
	key     string
	timeout time.Duration
	pinPath string
}

func (f *adminFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.socket, "socket", config.Default().AdminSocket, "the agent's admin socket")
	cmd.Flags().StringVar(&f.key, "key", "", "an SSH private key (OpenSSH or PEM, unencrypted) to sign the request with: needed when the agent's configuration names adminKeys")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "how long to wait for the agent")
}

func (f *adminFlags) send(ctx context.Context, req agent.AdminRequest) error {
	var signer ssh.Signer
	if f.key != "" {
		b, err := os.ReadFile(f.key)
		if err != nil {
			return withCode(exitcode.Usage, fmt.Errorf("--key: %w", err))
		}
		if signer, err = ssh.ParsePrivateKey(b); err != nil {
			return withCode(exitcode.Usage, fmt.Errorf("--key %s: %w", f.key, err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := agent.Administer(ctx, f.socket, req, signer); err != nil {
		return withCode(exitcode.Failure, fmt.Errorf("%s: %w", req.Op, err))
	}
	return nil
}

func newStopCommand(s Streams) *cobra.Command {
	var f adminFlags
	var unload bool
	var record string
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the running agent (with --unload, the kernel stops enforcing too)",
		Long: `Stop the running agent through its admin socket, the one way to stop an
agent that protects itself (on the bpf backend no other process, root
included, may signal it).

Without --unload the agent exits and its pinned BPF programs go on
enforcing the last policy until an agent starts and takes them over; with
--unload it removes them first, and the kernel stops enforcing. On the
fanotify backend the agent exits and enforcement ends with it.

The request is authorized when it comes from root and, if the agent's
configuration names adminKeys, is signed with one of their private keys
(--key) over a challenge the agent makes for this request.`,
		Example: `  sudo drmfilter stop
  sudo drmfilter stop --unload --key ~/.ssh/drmfilter_admin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminStop, Unload: unload})
			if err != nil && unload && errors.Is(err, agent.ErrNoAgent) && bpflsm.Pinned(f.pinPath) {
				// No agent, but its programs: removed by this executable
				// (the one they trust), unless they need a signature.
				if perr := bpflsm.UnloadPinned(f.pinPath); perr != nil {
					return withCode(exitcode.Failure, fmt.Errorf("no agent runs, and its pinned programs: %w", perr))
				}
				// An authorized unload: a later boot without BPF LSM is
				// then no sign of anything (internal/signs).
				if rerr := signs.MarkUnloaded(record, time.Now().UTC()); rerr != nil {
					fmt.Fprintf(s.Err, "warning: %v\n", rerr)
				}
				fmt.Fprintln(s.Out, "no agent ran; its pinned programs are unloaded: the kernel no longer enforces the policies")
				return nil
			}
			if err != nil {
				return err
			}
			if unload {
				fmt.Fprintln(s.Out, "stopped; the kernel no longer enforces the policies")
			} else {
				fmt.Fprintln(s.Out, "stopped; pinned programs (bpf backend) go on enforcing the last policy")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&unload, "unload", false, "remove the agent's BPF programs: the kernel stops enforcing")
	cmd.Flags().StringVar(&f.pinPath, "pin-path", config.Default().BPF.PinPath, "where the agent pins its programs (for --unload without a running agent)")
	cmd.Flags().StringVar(&record, "record-file", config.Default().BPF.RecordFile, "the agent's enforcement record (bpf.recordFile), marked unloaded by --unload without a running agent")
	f.add(cmd)
	return cmd
}

func newReloadCommand(s Streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Have the running agent reload its policies and reopen its audit log",
		Long: `Have the running agent reload its policies and reopen its audit log, as
SIGHUP does, through its admin socket: an agent that protects itself takes
no signal from another process. Authorized as drmfilter stop is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminReload}); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, "reloaded")
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newUpgradeCommand(s Streams) *cobra.Command {
	var f adminFlags
	var await bool
	cmd := &cobra.Command{
		Use:   "upgrade NEW-EXECUTABLE",
		Short: "Hand the pinned programs to a new drmfilter executable and stop the running agent",
		Long: `Hand the running agent's pinned BPF programs to a new drmfilter executable
(an upgrade), then stop the agent: the programs go on enforcing the last
policy until the agent started from NEW-EXECUTABLE takes them over. Only
the agent's own executable, or the one an upgrade names, may take them
over, so the upgrade must name the file the service runs next.

With --await the agent goes on running: the file that a package manager
next renames (or hard-links) to PATH becomes the executable trusted to take
the programs over, and the next start of the service runs it. When no agent
runs but its programs are pinned, drmfilter does this itself (unless the
agent was configured with adminKeys: then only a signed request to a running
agent may). The package's maintainer scripts do this on an upgrade.

Authorized as drmfilter stop is (root, and --key when adminKeys are
configured).`,
		Example: `  sudo drmfilter upgrade /usr/lib/drmfilter/2.1.0/drmfilter
  sudo drmfilter upgrade --await /usr/bin/drmfilter && sudo apt-get install drmfilter`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := filepath.Abs(args[0])
			if err != nil {
				return withCode(exitcode.Usage, err)
			}
			if await {
				err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminAwait, Exe: exe})
				if err != nil && errors.Is(err, agent.ErrNoAgent) && bpflsm.Pinned(f.pinPath) {
					if perr := bpflsm.AwaitSuccessorPinned(f.pinPath, exe); perr != nil {
						return withCode(exitcode.Failure, fmt.Errorf("no agent runs, and its pinned programs: %w", perr))
					}
					fmt.Fprintf(s.Out, "the pinned programs (no agent runs) will trust the file installed at %s\n", exe)
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "the agent will trust the file installed at %s to take over at its next start\n", exe)
				return nil
			}
			if fi, err := os.Stat(exe); err != nil || !fi.Mode().IsRegular() {
				return withCode(exitcode.Usage, errors.Join(fmt.Errorf("%s is not an executable file", exe), err))
			}
			if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminUpgrade, Exe: exe}); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "stopped; the pinned programs wait for %s to take them over\n", exe)
			return nil
		},
	}
	cmd.Flags().BoolVar(&await, "await", false, "trust the file next installed at the path (by rename), and keep the agent running")
	cmd.Flags().StringVar(&f.pinPath, "pin-path", config.Default().BPF.PinPath, "where the agent pins its programs (for --await without a running agent)")
	f.add(cmd)
	return cmd
}

func newPolicyApplyCommand(s Streams) *cobra.Command {
	var f adminFlags
	var replace bool
	cmd := &cobra.Command{
		Use:   "apply FILE...",
		Short: "Write policy files into the running agent's policy directory, and reload",
		Long: `Send policy files to the running agent over its admin socket: it writes them
into its policy directory (under their base names) and reloads. With the bpf
backend's self-protection the policy directory is sealed, and this is the
way to change policies. A change that does not load is undone and reported.
Authorized as drmfilter stop is (root, and --key when adminKeys are
configured).`,
		Example: `  sudo drmfilter policy apply payroll.yaml --key ~/.ssh/drmfilter_admin`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var files []agent.AdminFile
			for _, p := range args {
				data, err := os.ReadFile(p)
				if err != nil {
					return withCode(exitcode.Usage, err)
				}
				files = append(files, agent.AdminFile{Name: filepath.Base(p), Data: data})
			}
			if replace {
				if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminPolicySet, Files: files}); err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "the policy directory now holds the %d files given\n", len(files))
				return nil
			}
			for _, file := range files {
				if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminPolicyPut, Name: file.Name, Data: file.Data}); err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "applied %s\n", file.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "make the files given the whole content of the policy directory, in one change")
	f.add(cmd)
	return cmd
}

func newConfigCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Change the running agent's configuration file"}
	var f adminFlags
	apply := &cobra.Command{
		Use:   "apply FILE",
		Short: "Have the running agent write FILE as its configuration file (in force at its next start)",
		Long: `Send a configuration to the running agent over its admin socket: it checks
that it loads and writes it over the file it was started with (--config),
which on the bpf backend with self-protection no other process may change.
It takes effect at the agent's next start (systemctl restart drmfilter).
Authorized as drmfilter stop is.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return withCode(exitcode.Usage, err)
			}
			if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminConfigPut, Data: data}); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, "written; in force at the agent's next start")
			return nil
		},
	}
	f.add(apply)
	cmd.AddCommand(apply)
	return cmd
}

func newPolicyRemoveCommand(s Streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "remove NAME...",
		Short: "Remove policy files from the running agent's policy directory, and reload",
		Long: `Ask the running agent over its admin socket to remove policy files (by name)
from its policy directory and reload; see policy apply.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminPolicyRemove, Name: n}); err != nil {
					return err
				}
				fmt.Fprintf(s.Out, "removed %s\n", n)
			}
			return nil
		},
	}
	f.add(cmd)
	return cmd
}
