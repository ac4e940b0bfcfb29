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
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

type adminFlags struct {
	socket  string
	key     string
	timeout time.Duration
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
			if err := f.send(cmd.Context(), agent.AdminRequest{Op: agent.AdminStop, Unload: unload}); err != nil {
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
	f.add(cmd)
	return cmd
}

func newUpgradeCommand(s Streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "upgrade NEW-EXECUTABLE",
		Short: "Hand the pinned programs to a new drmfilter executable and stop the running agent",
		Long: `Hand the running agent's pinned BPF programs to a new drmfilter executable
(an upgrade), then stop the agent: the programs go on enforcing the last
policy until the agent started from NEW-EXECUTABLE takes them over. Only
the agent's own executable, or the one an upgrade names, may take them
over, so the upgrade must name the file the service runs next.

Authorized as drmfilter stop is (root, and --key when adminKeys are
configured).`,
		Example: `  sudo drmfilter upgrade /usr/bin/drmfilter && sudo systemctl restart drmfilter`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := filepath.Abs(args[0])
			if err != nil {
				return withCode(exitcode.Usage, err)
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
	f.add(cmd)
	return cmd
}
