package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/policy"
)

func newPolicyCommand(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate protection policies and explain their decisions",
		Long: `Policies are YAML files of kind ProtectionPolicy. A path may be a file
(one or more documents separated by ---) or a directory, whose *.yaml and
*.yml files are read. A set of policies loads all-or-nothing.`,
	}
	cmd.AddCommand(newPolicyCheckCommand(s), newPolicyExplainCommand(s), newPolicyApplyCommand(s), newPolicyRemoveCommand(s))
	return cmd
}

func newPolicyCheckCommand(s Streams) *cobra.Command {
	var output, backend string
	cmd := &cobra.Command{
		Use:   "check PATH...",
		Short: "Validate policy files and directories",
		Long: `Validate policies the way the agent loads them: parse, check every field,
resolve user and group names on this host, check that the enforcement
backend can enforce every rule, and compile. Prints one line per policy, or
every problem found with its file:line:column. Exits 1 if any policy is
invalid or names what the backend cannot enforce.

--backend says which backend to check against: fanotify mediates open, exec
and read; bpf (BPF LSM) mediates every operation (write, delete, rename,
link, truncate and setattr too). auto is the backend the agent would choose
on this machine (bpf where BPF LSM programs run and the bpf backend decides
everything the policies use, else fanotify); it says which and why on
standard error, or in the JSON's backend and backend_reason.`,
		Example: `  drmfilter policy check examples/
  drmfilter policy check --backend bpf /etc/drmfilter/policies/
  drmfilter policy check -o json /etc/drmfilter/policies/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			b, err := checkBackend(backend)
			if err != nil {
				return err
			}
			set, err := policy.LoadPaths(args, policy.LoadOptions{})
			if err != nil {
				return reportLoadError(s, output, err)
			}
			var why string // why auto chose b
			if backend == "auto" {
				b, why = autoBackend(set, probeBackend())
				if output != "json" {
					fmt.Fprintf(s.Err, "backend auto: checking against %s: %s\n", b.Name, why)
				}
			}
			if errs := set.Unsupported(b); len(errs) > 0 {
				return reportCheckError(s, output, errs, why)
			}
			m := policy.Compile(set, policy.CompileOptions{})
			if output == "json" {
				r := checkReport(set, m, b)
				r.BackendReason = why
				return writeJSON(s.Out, r)
			}
			for _, p := range set.Policies {
				fmt.Fprintf(s.Out, "ok  %-24s mode=%-7s rules=%-3d files=%s  (%s)\n",
					p.Name, p.Spec.Mode, len(p.Spec.Rules), describeFiles(&p.Spec.Files), p.Pos.File)
			}
			fmt.Fprintf(s.Out, "%d policies, %d rules, hash %s\n", len(set.Policies), m.Rules(), set.Hash)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringVar(&backend, "backend", policy.BackendFanotify, "enforcement backend to check against: auto, fanotify or bpf")
	return cmd
}

// checkBackend is the backend `policy check --backend` names; auto is
// resolved by autoBackend once the policies are loaded (until then it is
// fanotify).
func checkBackend(name string) (policy.Backend, error) {
	if name == "auto" {
		name = policy.BackendFanotify
	}
	b, err := policy.ParseBackend(name)
	if err != nil {
		return b, fmt.Errorf("--backend: %w, or auto", err)
	}
	if b.Name == policy.BackendBPF {
		b = bpflsm.PolicyBackend() // with what the programs cannot decide yet
	}
	return b, nil
}

// probeBackend says whether the bpf backend can run here, for --backend
// auto; tests replace it.
var probeBackend = probeBPF

// autoBackend is the backend the agent would choose for the set on a
// machine whose kernel answered a (internal/agent's chooseBackend): bpf
// when BPF LSM programs run and the bpf backend decides everything the
// policies use, else fanotify; and why, in one line.
func autoBackend(set *policy.Set, a bpflsm.Availability) (policy.Backend, string) {
	if !a.OK {
		return policy.FanotifyBackend(), "BPF LSM is not available: " + a.Reason
	}
	if errs := bpflsm.Unsupported(set); len(errs) > 0 {
		return policy.FanotifyBackend(), "BPF LSM is available, but the policies use what the bpf backend does not decide yet: " + errs[0].Error()
	}
	return bpflsm.PolicyBackend(), a.Reason
}

type checkJSON struct {
	Valid         bool            `json:"valid"`
	Backend       string          `json:"backend,omitempty"`
	BackendReason string          `json:"backend_reason,omitempty"` // why --backend auto chose Backend
	Hash          string          `json:"hash,omitempty"`
	Policies      []policySummary `json:"policies,omitempty"`
	Errors        []*policy.Error `json:"errors,omitempty"`
	Problem       string          `json:"problem,omitempty"`
}

type policySummary struct {
	Name  string `json:"name"`
	Mode  string `json:"mode"`
	Rules int    `json:"rules"`
	Files string `json:"files"`
	File  string `json:"file"`
	Line  int    `json:"line"`
}

func checkReport(set *policy.Set, m *policy.Matcher, b policy.Backend) checkJSON {
	r := checkJSON{Valid: true, Backend: b.Name, Hash: set.Hash}
	for _, p := range set.Policies {
		r.Policies = append(r.Policies, policySummary{Name: p.Name, Mode: p.Spec.Mode.String(), Rules: len(p.Spec.Rules), Files: describeFiles(&p.Spec.Files), File: p.Pos.File, Line: p.Pos.Line})
	}
	return r
}

// reportLoadError prints every policy problem and returns the exit code
// for an invalid policy; other errors (missing files) are returned as they are.
func reportLoadError(s Streams, output string, err error) error {
	return reportCheckError(s, output, err, "")
}

// reportCheckError is reportLoadError for policy check, with why --backend
// auto chose the backend ("" for a backend named on the command line).
func reportCheckError(s Streams, output string, err error, why string) error {
	perrs := policy.Errors(err)
	if output == "json" {
		r := checkJSON{Valid: false, Errors: perrs}
		if errors.Is(err, policy.ErrUnsupported) {
			r.Backend = perrs[0].Backend
			r.BackendReason = why
		}
		if perrs == nil {
			r.Problem = err.Error()
		}
		if werr := writeJSON(s.Out, r); werr != nil {
			return werr
		}
		return withCode(exitcode.Failure, nil)
	}
	if perrs == nil {
		return withCode(exitcode.Failure, err)
	}
	for _, e := range perrs {
		fmt.Fprintln(s.Err, e)
	}
	if errors.Is(err, policy.ErrUnsupported) {
		fmt.Fprintf(s.Err, "%d problem(s) found: the %s backend cannot enforce these policies; no policy was loaded\n", len(perrs), perrs[0].Backend)
	} else {
		fmt.Fprintf(s.Err, "%d problem(s) found; no policy was loaded\n", len(perrs))
	}
	return withCode(exitcode.Failure, nil)
}

func describeFiles(f *policy.FileSelector) string {
	var parts []string
	if len(f.Paths) > 0 {
		parts = append(parts, strings.Join(f.Paths, ","))
	}
	if len(f.Extensions) > 0 {
		parts = append(parts, "ext:"+strings.Join(f.Extensions, ","))
	}
	if len(f.Filesystems) > 0 {
		parts = append(parts, "fs:"+strings.Join(f.Filesystems, ","))
	}
	if len(f.StorageClasses) > 0 {
		parts = append(parts, "class:"+strings.Join(f.StorageClasses, ","))
	}
	if len(f.ExcludePaths) > 0 {
		parts = append(parts, "except:"+strings.Join(f.ExcludePaths, ","))
	}
	return strings.Join(parts, " ")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("unknown output format %q (want text or json)", o)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// absPath makes a path given on the command line absolute and clean, the
// form the agent sees from the kernel.
func absPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if !filepath.IsAbs(p) {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		p = filepath.Join(wd, p)
	}
	return filepath.Clean(p), nil
}
