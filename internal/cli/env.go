package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/environ"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

func newEnvCommand(s Streams) *cobra.Command {
	var (
		root, output, cpuidVendor, arch string
		pid                             int
		metadata                        bool
		noMounts                        bool
	)
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Tell where drmfilter runs: hypervisor, cloud, container, disks, mounts",
		Long: `env inspects the machine and prints the hypervisor (named as systemd-detect-virt
names it), nested virtualization, the cloud provider, the container around this
process (or --pid), the block devices and whether they are virtual, and the
mounts with their storage class.

With --root DIR it inspects a tree captured from another machine (or a disk
image mounted at DIR) and reads nothing from the live machine: CPUID then comes
from --cpuid-vendor (empty means no hypervisor bit) and the architecture from
--arch (empty means any).`,
		Example: `  drmfilter env
  drmfilter env -o json
  drmfilter env --pid 4242
  drmfilter env --root /mnt/snapshot --cpuid-vendor KVMKVMKVM --arch amd64`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return withCode(exitcode.Usage, fmt.Errorf("unknown output format %q (want table or json)", output))
			}
			if pid < 0 {
				return withCode(exitcode.Usage, fmt.Errorf("--pid %d: want a positive process id", pid))
			}
			opts := environ.Options{Root: root, Arch: arch, PID: pid, Metadata: metadata, NoMounts: noMounts}
			if root != "" && root != "/" {
				opts.CPU = environ.VendorCPU(cpuidVendor)
			} else if cmd.Flags().Changed("cpuid-vendor") || cmd.Flags().Changed("arch") {
				return withCode(exitcode.Usage, fmt.Errorf("--cpuid-vendor and --arch need --root: the live machine answers for itself"))
			}
			rep := environ.Detect(cmd.Context(), opts)
			var lsm *bpflsm.Availability
			if root == "" || root == "/" {
				a := probeBPF()
				lsm = &a
			}
			if output == "json" {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(envJSON{Report: rep, BPFLSM: lsm})
			}
			if err := writeEnvTable(s.Out, rep); err != nil {
				return err
			}
			if lsm != nil {
				writeBPFLSM(s.Out, *lsm)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "", "inspect the machine whose / is at `DIR` instead of the live one")
	f.IntVar(&pid, "pid", 0, "report the container of process `N` (default: this process)")
	f.StringVarP(&output, "output", "o", "table", "output format: table or json")
	f.StringVar(&cpuidVendor, "cpuid-vendor", "", "with --root: CPUID leaf 0x40000000 signature, e.g. KVMKVMKVM (empty: no hypervisor bit)")
	f.StringVar(&arch, "arch", "", "with --root: architecture, e.g. amd64, arm64, s390x (empty: any)")
	f.BoolVar(&metadata, "metadata", false, "also ask the cloud's instance metadata service (aws, azure, gcp; 0.5 s timeout)")
	f.BoolVar(&noMounts, "no-mounts", false, "do not read the mount table")
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeEnvTable prints the report for a person. The JSON form is the one to
// parse.
// envJSON is env's JSON output: the environment report and, on the live
// machine, whether the bpf backend can run.
type envJSON struct {
	environ.Report
	BPFLSM *bpflsm.Availability `json:"bpf_lsm,omitempty"`
}

// probeBPF is bpflsm.Probe for root; other users cannot load programs, so
// the answer would be about them, not the kernel.
func probeBPF() bpflsm.Availability {
	if os.Geteuid() != 0 {
		return bpflsm.Availability{Reason: "not checked: loading a BPF LSM program needs root (run as root to see whether the bpf backend can run)"}
	}
	return bpflsm.Probe()
}

func writeBPFLSM(out io.Writer, a bpflsm.Availability) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	state := "not available"
	if a.OK {
		state = "available"
	}
	fmt.Fprintf(w, "BPF LSM (bpf backend):\t%s: %s\n", state, a.Reason)
	if len(a.LSMs) > 0 {
		fmt.Fprintf(w, "  active LSMs:\t%s; BTF %s\n", strings.Join(a.LSMs, ","), yesNo(a.BTF))
	}
	if a.Fix != "" {
		fmt.Fprintf(w, "  to enable:\t%s\n", a.Fix)
	}
	_ = w.Flush()
}

func writeEnvTable(out io.Writer, rep environ.Report) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	hv := rep.Hypervisor
	hd := rep.HypervisorDetail
	switch {
	case hd.Physical:
		hv = "physical (none)"
	case hd.VMM != "":
		hv += " (" + hd.VMM + ")"
	}
	if hd.Xen != nil {
		x := "Xen " + hd.Xen.Role
		if hd.Xen.Mode != "" {
			x += ", " + hd.Xen.Mode
		}
		hv += " [" + x + "]"
	}
	fmt.Fprintf(w, "Hypervisor:\t%s\n", hv)
	if len(hd.Signals) > 0 {
		fmt.Fprintf(w, "  evidence:\t%s\n", strings.Join(hd.Signals, "; "))
	}
	if d := hd.DMI; d.SysVendor != "" || d.ProductName != "" {
		fmt.Fprintf(w, "  dmi:\t%s / %s\n", dash(d.SysVendor), dash(d.ProductName))
	}
	n := rep.Nested
	if rep.Hypervisor == environ.HVNone {
		fmt.Fprintf(w, "Nested virtualization:\tnot a guest (this CPU: vmx %s, svm %s)\n", yesNo(n.VMX), yesNo(n.SVM))
	} else {
		avail := yesNo(n.Available)
		if n.Available && n.Mechanism != "" {
			avail += " via " + n.Mechanism
		}
		fmt.Fprintf(w, "Nested virtualization:\t%s (vmx %s, svm %s, /dev/kvm %s, hyper-v enlightened vmcs %s)\n",
			avail, yesNo(n.VMX), yesNo(n.SVM), yesNo(n.KVMDevice), yesNo(n.HyperVEnlightenedVMCS))
	}
	cl := rep.Cloud
	cd := rep.CloudDetail
	if cd.BareMetal {
		cl += " (bare metal)"
	}
	if cd.InstanceType != "" {
		cl += ", instance type " + cd.InstanceType
	}
	fmt.Fprintf(w, "Cloud:\t%s\n", cl)
	if len(cd.Signals) > 0 {
		fmt.Fprintf(w, "  evidence:\t%s\n", strings.Join(cd.Signals, "; "))
	}
	if m := cd.Metadata; m != nil {
		if m.Error != "" {
			fmt.Fprintf(w, "  metadata:\t%s\n", m.Error)
		} else {
			fmt.Fprintf(w, "  metadata:\tid %s, type %s, region %s\n", dash(m.InstanceID), dash(m.InstanceType), dash(m.Region))
		}
	}
	c := rep.ContainerDetail
	who := "this process"
	if c.PID > 0 {
		who = fmt.Sprintf("pid %d", c.PID)
	}
	ct := rep.Container
	if c.InContainer {
		ct += fmt.Sprintf(" (%s isolation", c.Isolation)
		if c.Sandbox != "" {
			ct += ", " + c.Sandbox
		}
		ct += ")"
	}
	fmt.Fprintf(w, "Container (%s):\t%s\n", who, ct)
	if c.Kubernetes {
		fmt.Fprintf(w, "  pod:\tuid %s, qos %s, runtime %s\n", dash(c.PodUID), dash(c.QoSClass), dash(c.Runtime))
	}
	if c.ID != "" {
		fmt.Fprintf(w, "  id:\t%s\n", c.ID)
	}
	if len(c.Signals) > 0 {
		fmt.Fprintf(w, "  evidence:\t%s\n", strings.Join(c.Signals, "; "))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nDisks:")
	if len(rep.Disks) == 0 {
		fmt.Fprintln(out, "  (none found)")
	} else {
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  NAME\tKIND\tVIRTUAL\tSIZE\tVENDOR\tMODEL")
		for _, d := range rep.Disks {
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, yesNo(d.Virtual), humanBytes(d.SizeBytes), dash(d.Vendor), dash(d.Model))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	switch {
	case rep.Mounts == nil:
	case len(rep.Mounts) == 0:
		fmt.Fprintln(out, "\nMounts:\n  (no mount table)")
	default:
		fmt.Fprintln(out, "\nMounts:")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  MOUNT POINT\tFSTYPE\tSOURCE\tCLASS\tPROVIDER")
		for _, m := range rep.Mounts {
			mp := m.MountPoint
			if m.Hidden {
				mp += " (covered)"
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", mp, m.FSType, dash(m.Source), m.Class, dash(m.Provider))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(out, "\nProblems (answers above are best effort):")
		for _, p := range rep.Problems {
			fmt.Fprintf(out, "  %s: %s\n", p.Path, p.Error)
		}
	}
	return nil
}
