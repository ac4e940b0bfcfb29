package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/policy"
)

type explainFlags struct {
	policies     []string
	path         string
	exe          string
	exeSHA256    string
	script       string
	uid          uint32
	gid          uint32
	groups       []uint
	op           string
	container    string
	runtime      string
	image        string
	cpath        string
	pod          string
	podLabels    map[string]string
	fsType       string
	storageClass string
	hypervisor   string
	cloud        string
	inContainer  bool
	mode         string
	output       string
	exitCode     bool
}

func newPolicyExplainCommand(s Streams) *cobra.Command {
	f := explainFlags{uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	cmd := &cobra.Command{
		Use:   "explain --policy PATH --path FILE --exe EXE",
		Short: "Show the decision for one operation and the rules that led to it",
		Long: `Decide one file operation exactly as the agent would, and show why: which
policies cover the file, which rules match the process, and the precedence
that picks the deciding rule.

Nothing is read from the file or the running system except the policies (and
the executable, to hash it, when a rule selects executables by hash and
--exe-sha256 is not given). Describe the process and the file with flags;
the defaults describe a host process of the current user on a physical
machine.

--op names the operation; an event that is several operations at once is
written with commas, and is allowed only if it is allowed as each: the bpf
backend decides a writing open as open,write (--op write means the same),
so a rule on open and a rule on write can each deny it.`,
		Example: `  drmfilter policy explain --policy examples/finance-docs.yaml \
      --path /srv/finance/q3.xlsx --exe /usr/bin/cat
  drmfilter policy explain --policy examples/ --op exec -o json \
      --path /srv/finance/run.sh --exe /usr/bin/bash --uid 1000
  drmfilter policy explain --policy examples/finance-docs.yaml --op open,write \
      --path /srv/finance/q3.xlsx --exe /usr/lib/libreoffice/program/soffice.bin
  drmfilter policy explain --policy examples/kubernetes-secrets.yaml \
      --path /var/lib/kubelet/pods/7f1c/volumes/kubernetes.io~secret/db/password \
      --exe /app/server --container 3f4e5d6c7b8a --runtime containerd \
      --pod payments/api-0 --pod-label app=payments-api --pod-label tier=backend`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExplain(s, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.policies, "policy", "p", nil, "policy file or directory (repeatable)")
	fl.StringVar(&f.path, "path", "", "the file operated on")
	fl.StringVar(&f.exe, "exe", "", "the executable of the process")
	fl.StringVar(&f.exeSHA256, "exe-sha256", "", "SHA-256 of the executable (default: hash --exe when a rule needs it)")
	fl.StringVar(&f.script, "script", "", "the script the process's exec ran through its \"#!\" line (--exe is then the interpreter)")
	fl.Uint32Var(&f.uid, "uid", f.uid, "user id of the process")
	fl.Uint32Var(&f.gid, "gid", f.gid, "group id of the process")
	fl.UintSliceVar(&f.groups, "groups", nil, "supplementary group ids of the process")
	fl.StringVar(&f.op, "op", "open", "operation: "+strings.Join(policy.OperationNames(), ", ")+"; several, comma-separated, for an event that is each (open,write: a writing open, as the bpf backend decides it; write alone means the same)")
	fl.StringVar(&f.container, "container", "", "container id of the process (empty: a host process)")
	fl.StringVar(&f.runtime, "runtime", "", "container runtime of the process (docker, podman, containerd, cri-o, ...)")
	fl.StringVar(&f.image, "image", "", "image of the process's container (reference or sha256 digest)")
	fl.StringVar(&f.cpath, "container-path", "", "the file's path as the containerised process sees it")
	fl.StringVar(&f.pod, "pod", "", "Kubernetes pod of the process, as NAMESPACE/NAME")
	fl.StringToStringVar(&f.podLabels, "pod-label", nil, "a label of the pod, KEY=VALUE (repeatable)")
	fl.StringVar(&f.fsType, "fstype", "", "filesystem type of the file (ext4, nfs4, ...)")
	fl.StringVar(&f.storageClass, "storage-class", "", "storage class of the file (local, network, cloud, shared-folder, removable)")
	fl.StringVar(&f.hypervisor, "hypervisor", "", "hypervisor of the host, as systemd-detect-virt names it (empty: physical)")
	fl.StringVar(&f.cloud, "cloud", "", "cloud provider of the host (azure, aws, gcp, ...)")
	fl.BoolVar(&f.inContainer, "agent-in-container", false, "the agent itself runs in a container")
	fl.StringVar(&f.mode, "mode", "", "override every policy's mode: enforce or audit")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	fl.BoolVar(&f.exitCode, "exit-code", false, fmt.Sprintf("exit with status %d when the decision is deny", exitcode.Denied))
	for _, name := range []string{"policy", "path", "exe"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// fileHasher hashes an executable given on the command line.
type fileHasher string

func (h fileHasher) SHA256() ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(string(h))
	if err != nil {
		return sum, err
	}
	defer f.Close()
	hh := sha256.New()
	if _, err := io.Copy(hh, f); err != nil {
		return sum, err
	}
	copy(sum[:], hh.Sum(nil))
	return sum, nil
}

func runExplain(s Streams, f *explainFlags) error {
	if err := checkOutput(f.output); err != nil {
		return err
	}
	op, err := policy.ParseOperations(f.op)
	if err != nil {
		return fmt.Errorf("--op: %w", err)
	}
	path, err := absPath(f.path)
	if err != nil {
		return fmt.Errorf("--path: %w", err)
	}
	exe, err := absPath(f.exe)
	if err != nil {
		return fmt.Errorf("--exe: %w", err)
	}
	var opts policy.CompileOptions
	switch f.mode {
	case "", "enforce":
	case "audit":
		opts.ForceAudit = true
	default:
		return fmt.Errorf("--mode: unknown mode %q (want enforce or audit)", f.mode)
	}
	in := policy.Input{
		Op: op, Path: path, FSType: f.fsType, StorageClass: f.storageClass,
		Subject: policy.Subject{Exe: exe, UID: f.uid, GID: f.gid, Hasher: fileHasher(exe),
			Container: policy.Container{ID: f.container, Runtime: f.runtime, Image: f.image}},
		Env: policy.Env{Virtual: f.hypervisor != "", Hypervisor: f.hypervisor, Cloud: f.cloud, InContainer: f.inContainer},
	}
	if f.cpath != "" {
		if f.container == "" && f.runtime == "" {
			return fmt.Errorf("--container-path: the process must be in a container; give --container and/or --runtime too")
		}
		if in.ContainerPath, err = absPath(f.cpath); err != nil || !strings.HasPrefix(f.cpath, "/") {
			return fmt.Errorf("--container-path: expected an absolute path, got %q", f.cpath)
		}
	}
	if f.script != "" {
		if in.Subject.Script, err = absPath(f.script); err != nil {
			return fmt.Errorf("--script: %w", err)
		}
	}
	for _, g := range f.groups {
		in.Subject.Groups = append(in.Subject.Groups, uint32(g))
	}
	if f.exeSHA256 != "" {
		b, err := hex.DecodeString(strings.TrimPrefix(f.exeSHA256, "sha256:"))
		if err != nil || len(b) != 32 {
			return fmt.Errorf("--exe-sha256: expected 64 hex digits")
		}
		copy(in.Subject.ExeSHA256[:], b)
		in.Subject.HasSHA256 = true
	}
	if f.pod != "" {
		ns, name, ok := strings.Cut(f.pod, "/")
		if !ok || ns == "" || name == "" {
			return fmt.Errorf("--pod: expected NAMESPACE/NAME, got %q", f.pod)
		}
		in.Subject.Pod = &policy.Pod{Namespace: ns, Name: name, Labels: f.podLabels}
		if in.Subject.Container.Runtime == "" && in.Subject.Container.ID == "" {
			return fmt.Errorf("--pod: a pod's process runs in a container; give --container and/or --runtime too")
		}
	} else if len(f.podLabels) > 0 {
		return fmt.Errorf("--pod-label needs --pod")
	}

	set, err := policy.LoadPaths(f.policies, policy.LoadOptions{})
	if err != nil {
		return reportLoadError(s, "text", err)
	}
	m := policy.Compile(set, opts)
	ex := m.Explain(&in)
	if f.output == "json" {
		err = writeJSON(s.Out, explainJSON(&in, ex))
	} else {
		err = printExplanation(s.Out, &in, ex)
	}
	if err != nil {
		return err
	}
	if f.exitCode && ex.Decision.Verdict == policy.Deny {
		return withCode(exitcode.Denied, nil)
	}
	return nil
}

type explainOut struct {
	Decision decisionJSON         `json:"decision"`
	Input    inputJSON            `json:"input"`
	Policies []policy.PolicyTrace `json:"policies"`
	Order    []string             `json:"order"`
	// For an input of several operations: the one that decided, and the
	// decision for each.
	Operation  string          `json:"operation,omitempty"`
	Operations []operationJSON `json:"operations,omitempty"`
}

type operationJSON struct {
	Operation string       `json:"operation"`
	Decision  decisionJSON `json:"decision"`
	Order     []string     `json:"order"`
}

type decisionJSON struct {
	Verdict     string `json:"verdict"`
	Covered     bool   `json:"covered"`
	Audit       bool   `json:"audit"`
	Effect      string `json:"effect"`
	Policy      string `json:"policy,omitempty"`
	Rule        string `json:"rule,omitempty"`
	WouldDeny   bool   `json:"wouldDeny,omitempty"`
	WouldPolicy string `json:"wouldPolicy,omitempty"`
	WouldRule   string `json:"wouldRule,omitempty"`
}

type inputJSON struct {
	Operation     string `json:"operation"`
	Path          string `json:"path"`
	Executable    string `json:"executable"`
	UID           uint32 `json:"uid"`
	GID           uint32 `json:"gid"`
	Container     string `json:"container,omitempty"`
	Runtime       string `json:"runtime,omitempty"`
	Pod           string `json:"pod,omitempty"`
	ContainerPath string `json:"containerPath,omitempty"`
	Image         string `json:"image,omitempty"`
	FSType        string `json:"fstype,omitempty"`
	StorageClass  string `json:"storageClass,omitempty"`
}

func decisionOut(d policy.Decision) decisionJSON {
	return decisionJSON{Verdict: d.Verdict.String(), Covered: d.Covered, Audit: d.Audit, Effect: d.Effect.String(),
		Policy: d.Policy, Rule: d.Rule, WouldDeny: d.WouldDeny, WouldPolicy: d.WouldPolicy, WouldRule: d.WouldRule}
}

func explainJSON(in *policy.Input, ex policy.Explanation) explainOut {
	out := explainOut{Decision: decisionOut(ex.Decision), Policies: ex.Policies, Order: ex.Order,
		Input: inputJSON{Operation: in.Op.String(), Path: in.Path, Executable: in.Subject.Exe, UID: in.Subject.UID, GID: in.Subject.GID,
			Container: in.Subject.Container.ID, Runtime: in.Subject.Container.Runtime, FSType: in.FSType,
			ContainerPath: in.ContainerPath, Image: in.Subject.Container.Image, StorageClass: in.StorageClass}}
	if p := in.Subject.Pod; p != nil {
		out.Input.Pod = p.Namespace + "/" + p.Name
	}
	if out.Order == nil {
		out.Order = []string{}
	}
	out.Operation = ex.Operation
	for _, o := range ex.Operations {
		out.Operations = append(out.Operations, operationJSON{Operation: o.Operation, Decision: decisionOut(o.Decision), Order: o.Order})
	}
	return out
}

func printExplanation(w io.Writer, in *policy.Input, ex policy.Explanation) error {
	d := ex.Decision
	fmt.Fprintf(w, "Decision: %s\n", strings.ToUpper(d.Verdict.String()))
	fmt.Fprintf(w, "  %s %s by %s (uid %d", in.Op, in.Path, in.Subject.Exe, in.Subject.UID)
	if c := in.Subject.Container; c.InContainer() {
		fmt.Fprintf(w, ", container %s", c.ID)
	}
	fmt.Fprintln(w, ")")
	switch {
	case !d.Covered:
		fmt.Fprintln(w, "  No policy covers this file: allowed.")
	case d.Rule != "":
		fmt.Fprintf(w, "  Decided by rule %s/%s (%s)%s.\n", d.Policy, d.Rule, d.Effect, ruleSource(ex, d.Policy, d.Rule))
	default:
		fmt.Fprintln(w, "  Covered, but no enforcing rule matches this process and operation: allowed.")
	}
	if d.WouldDeny {
		fmt.Fprintf(w, "  Audit mode: rule %s/%s would deny; the operation is allowed and recorded.\n", d.WouldPolicy, d.WouldRule)
	} else if d.Audit {
		fmt.Fprintln(w, "  The operation is recorded in the audit log.")
	}
	if len(ex.Operations) > 0 {
		fmt.Fprintln(w, "  It is allowed only if allowed as each of its operations:")
		for _, o := range ex.Operations {
			by := "no enforcing rule"
			if od := o.Decision; od.Rule != "" {
				by = fmt.Sprintf("%s/%s (%s)", od.Policy, od.Rule, od.Effect)
			}
			fmt.Fprintf(w, "    %-8s %s by %s", o.Operation, o.Decision.Verdict, by)
			if o.Decision.WouldDeny {
				fmt.Fprintf(w, "; %s/%s would deny", o.Decision.WouldPolicy, o.Decision.WouldRule)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Policies:")
	for _, p := range ex.Policies {
		cover := "does not cover the file: " + p.Reason
		if p.Covers {
			cover = fmt.Sprintf("covers the file: %s (file specificity %d)", p.Reason, p.FileSpecificity)
		}
		fmt.Fprintf(w, "  %s (%s mode, %s)\n    %s\n", p.Policy, p.Mode, p.Source, cover)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, r := range p.Rules {
			state := "no match: " + r.Reason
			if r.Matched {
				state = fmt.Sprintf("match %s: %s (subject specificity %d)", ruleRanks(r), r.Reason, r.SubjectSpecificity)
				if r.Decided {
					state += "  <= decides"
				} else if ops := decidedOps(r); ops != "" {
					state += "  <= decides " + ops
				}
			}
			fmt.Fprintf(tw, "    - %s\t%s\t%s\t%s\n", r.Rule, r.Effect, r.Operations, state)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Precedence: the higher file specificity wins (literal path segments of the matching glob),")
	fmt.Fprintln(w, "then the higher subject specificity (kinds of subject condition), then deny over audit over")
	fmt.Fprintln(w, "allow, then the policy first by name, then the earlier rule. Audit-mode policies only record.")
	if len(ex.Operations) > 0 {
		fmt.Fprintln(w, "Each operation is decided on its own; the rule named is the strongest of their deciding rules.")
	}
	return nil
}

// ruleRanks is "#2", or for an input of several operations "open #1, write #2".
func ruleRanks(r policy.RuleTrace) string {
	if len(r.Ranks) == 0 {
		return fmt.Sprintf("#%d", r.Rank)
	}
	var parts []string
	for _, k := range r.Ranks {
		parts = append(parts, fmt.Sprintf("%s #%d", k.Operation, k.Rank))
	}
	return strings.Join(parts, ", ")
}

// decidedOps names the operations r decides, of an input of several.
func decidedOps(r policy.RuleTrace) string {
	var ops []string
	for _, k := range r.Ranks {
		if k.Decided {
			ops = append(ops, k.Operation)
		}
	}
	return strings.Join(ops, ",")
}

// ruleSource is " at FILE:LINE:COL" for a rule named in an explanation.
func ruleSource(ex policy.Explanation, pol, rule string) string {
	for _, p := range ex.Policies {
		for _, r := range p.Rules {
			if p.Policy == pol && r.Rule == rule {
				return " at " + r.Source.String()
			}
		}
	}
	return ""
}
