// Package config is the agent's configuration: its types, defaults, the
// YAML file form, validation, and the settings tuned to the environment the
// agent runs in.
//
// Files:
//   - config.go: Config, Load, Validate.
//   - tune.go: Tune, which fills unset settings from the environment.
//
// Precedence is: flags (applied by the caller after Load) over the config
// file over environment-tuned defaults over fixed defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// FailureMode says what the agent answers when it cannot decide in time or
// hits an internal error.
type FailureMode string

const (
	FailOpen   FailureMode = "open"   // allow (the default: never hang or break the host)
	FailClosed FailureMode = "closed" // deny
)

// Config is the agent's configuration. Zero durations and sizes mean
// "tuned to the environment" (see Tune).
type Config struct {
	// Policies are the policy files and directories to load.
	Policies []string `yaml:"policies"`
	// Mode is enforce or audit; audit puts every policy in audit mode.
	Mode string `yaml:"mode"`
	// FailureMode is open or closed.
	FailureMode FailureMode `yaml:"failureMode"`
	// Backend is auto, bpf or fanotify: which kernel interface enforces.
	// auto takes bpf where the kernel runs BPF LSM programs and the
	// policies use only what the bpf backend decides, else fanotify.
	Backend string `yaml:"backend"`
	// BPF tunes the bpf backend.
	BPF BPFConfig `yaml:"bpf"`
	// Deadline bounds the decision of one event; past it the event is
	// answered by FailureMode.
	Deadline time.Duration `yaml:"deadline"`
	// Workers is the number of goroutines deciding covered events whose
	// decision may block (reading an executable to hash it); the others
	// are decided where they are read.
	Workers int `yaml:"workers"`
	// Spin is how long the reader keeps polling for the next event before
	// it sleeps: it saves the kernel's wake-up of the agent for events that
	// follow each other closely, at a CPU cost bounded by Spin per batch
	// of events (none when idle). It is the maximum: the reader halves its
	// poll after one that found nothing and raises it when events follow
	// each other closely. Negative disables it; zero means tuned.
	Spin time.Duration `yaml:"spin"`
	// QueueSize bounds covered events waiting for a worker; when it is
	// full an event is answered by FailureMode at once.
	QueueSize int `yaml:"queueSize"`
	// CacheIgnoreMarks lets the agent tell the kernel to stop reporting
	// files no policy covers (fanotify ignore marks), until policies change.
	CacheIgnoreMarks *bool `yaml:"cacheIgnoreMarks"`
	// HostRoot is where the host's / is seen: "/" normally, "/host" in a pod.
	HostRoot string `yaml:"hostRoot"`
	// MarkOnly, when set, limits enforcement to filesystems mounted at or
	// below these paths: others are never marked, even if a policy covers
	// files on them (for example to protect only data volumes).
	MarkOnly []string `yaml:"markOnly"`
	// Audit configures the audit log.
	Audit AuditConfig `yaml:"audit"`
	// MetricsAddress is the host:port of Prometheus /metrics; "" (the
	// default) disables it. The agent does not start if it cannot listen
	// there. 127.0.0.1:9477 keeps it on loopback; any other host:port (for
	// example 0.0.0.0:9477 in a pod, for a scraper on the pod's IP)
	// exposes metrics, unauthenticated, to every network that reaches it.
	// /healthz and /readyz are served there too only on a port below
	// net.ipv4.ip_unprivileged_port_start: on another port any local user
	// can listen while the agent is down and answer for it, and, as the
	// agent then cannot start, keep it down. That is why it is off unless
	// configured (see agent.ListenMetrics).
	MetricsAddress string `yaml:"metricsAddress"`
	// StatusSocket is the root-only unix socket `drmfilter status` asks,
	// and the health check (`drmfilter status --check ready`). Its
	// directory must be root's alone (see agent.ListenStatus).
	StatusSocket string `yaml:"statusSocket"`
	// AdminSocket is the root-only unix socket the authorized
	// administration requests (`drmfilter stop`, `drmfilter upgrade`)
	// come through; "" serves none. Its directory must be root's alone.
	AdminSocket string `yaml:"adminSocket"`
	// AdminKeys are files of SSH public keys (authorized_keys format):
	// when any is set, an administration request must be signed by one of
	// their private keys, so root on the machine alone cannot stop the
	// agent or remove its programs. When none is, a request from root on
	// the admin socket is authorized.
	AdminKeys []string `yaml:"adminKeys"`
	// HypervisorExemption lets hypervisor processes open disk images
	// without a decision or an audit record.
	HypervisorExemption ExemptionConfig `yaml:"hypervisorExemption"`
	// CRI configures where pod and image metadata come from.
	CRI CRIConfig `yaml:"cri"`
}

// CRIConfig configures the container runtime (CRI) endpoints asked for
// the pod, image and labels of a container.
type CRIConfig struct {
	// Endpoints are CRI sockets; empty means discover the well-known ones
	// (containerd, CRI-O, k3s, microk8s, k0s, cri-dockerd) under hostRoot.
	Endpoints []string `yaml:"endpoints"`
	// Disabled turns pod metadata off.
	Disabled bool `yaml:"disabled"`
}

// AuditConfig configures the audit log.
type AuditConfig struct {
	// File is the JSON-lines audit file; "" disables the file. It must not
	// be on a filesystem the agent protects.
	File string `yaml:"file"`
	// MaxSizeMB rotates the file at this size.
	MaxSizeMB int `yaml:"maxSizeMB"`
	// Backups is how many rotated files are kept.
	Backups int `yaml:"backups"`
	// Stdout also writes records to standard output.
	Stdout bool `yaml:"stdout"`
	// QueueSize bounds records waiting to be written; beyond it records
	// are dropped and counted, never waited for.
	QueueSize int `yaml:"queueSize"`
	// RepeatWindow folds identical records (same decision, operation,
	// path, executable, uid, rule) within it into the first one plus a
	// summary with the count; "-1s" (any negative) writes every record.
	RepeatWindow time.Duration `yaml:"repeatWindow"`
	// PerUserRecords is how many records one uid may cause per
	// RepeatWindow; beyond it they are counted in one "suppressed" record.
	PerUserRecords int `yaml:"perUserRecords"`
}

// ExemptionConfig configures the hypervisor storage exemption.
type ExemptionConfig struct {
	// Enabled turns the exemption on (default true).
	Enabled *bool `yaml:"enabled"`
	// Executables adds hypervisor executables (absolute paths) to the
	// built-in list.
	Executables []string `yaml:"executables"`
	// Extensions replaces the built-in list of disk image extensions.
	Extensions []string `yaml:"extensions"`
}

// Backends.
const (
	BackendAuto     = "auto"
	BackendBPF      = "bpf"
	BackendFanotify = "fanotify"
)

// BPFConfig tunes the bpf backend.
type BPFConfig struct {
	// MaxFiles bounds the files the kernel keeps an entry of their own
	// for (0: twice what the policies need at load, at least 65,536).
	MaxFiles int `yaml:"maxFiles"`
	// PinPath is a directory on a BPF filesystem where the programs are
	// pinned, so that they go on deciding while the agent is down
	// (killed, crashed, upgraded), and where a starting agent takes them
	// over. "" pins nothing: the programs are detached when the agent
	// exits.
	PinPath string `yaml:"pinPath"`
	// SelfProtect has the programs refuse every other process, root
	// included, signals to the agent, attaching to it (ptrace,
	// /proc/PID/mem, process_vm_writev), descriptors for its maps,
	// programs and links, removing its pins and unmounting their
	// filesystem. The agent then stops only through its admin socket.
	SelfProtect bool `yaml:"selfProtect"`
	// TrustedCodeDirs are where a process may map code from (files
	// owned by root and writable by no one else, at any depth below)
	// and keep the allowances rules give its executable. A process that
	// maps other code executable, makes memory executable, was started
	// with LD_PRELOAD or LD_AUDIT, or was attached to by another process
	// loses them until its next exec.
	TrustedCodeDirs []string `yaml:"trustedCodeDirs"`
	// TakeOverRunning has an agent that starts while another runs the
	// pinned programs ask it, over its admin socket, to hand them over
	// (signed with HandoverKey when the running agent has adminKeys),
	// and enforce from then on: the DaemonSet's rolling update starts the
	// new pod beside the old one. Off, such a start is refused.
	TakeOverRunning bool `yaml:"takeOverRunning"`
	// HandoverKey is the SSH private key that signs the handover request.
	HandoverKey string `yaml:"handoverKey"`
	// LockKernel refuses every process, root included, loading a kernel
	// module or a kernel to kexec while the programs enforce (until
	// drmfilter stop --unload): what kernel.modules_disabled does, but
	// for as long as the programs enforce, not until the next boot. Off
	// by default: the kernel loads modules on demand (a new filesystem
	// type, a network protocol, a device), which this refuses as well.
	LockKernel bool `yaml:"lockKernel"`
	// RecordFile keeps, across reboots, what the agent enforced with
	// (pinned programs, this boot), so that a start finds the signs that
	// root got around them: a boot without BPF LSM, pinned programs gone
	// with no authorized stop. Used only with PinPath; "" keeps no record.
	RecordFile string `yaml:"recordFile"`
}

// Default returns the fixed defaults. Environment-dependent settings stay
// zero until Tune.
func Default() Config {
	return Config{
		Policies:       []string{"/etc/drmfilter/policies"},
		Mode:           "enforce",
		FailureMode:    FailOpen,
		Backend:        BackendAuto,
		HostRoot:       "/",
		MetricsAddress: "", // off unless configured: see MetricsAddress
		StatusSocket:   "/run/drmfilter/status.sock",
		AdminSocket:    "/run/drmfilter/admin.sock",
		BPF: BPFConfig{PinPath: "/sys/fs/bpf/drmfilter", SelfProtect: true, RecordFile: "/var/lib/drmfilter/enforcement.json",
			TrustedCodeDirs: []string{"/usr/lib", "/lib", "/usr/lib64", "/lib64", "/usr/lib32", "/lib32", "/usr/libexec", "/usr/local/lib"}},
		Audit: AuditConfig{
			File:      "/var/log/drmfilter/audit.jsonl",
			MaxSizeMB: 100,
			Backups:   5,
			QueueSize: 8192,
			// A user looping on a denied open wrote about 12,000 records a
			// second and rotated the history away in minutes.
			RepeatWindow:   10 * time.Second,
			PerUserRecords: 1000,
		},
	}
}

// Load reads a YAML config over the defaults. Unknown fields are errors.
func Load(r io.Reader, name string) (Config, error) {
	cfg := Default()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", name, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// LoadFile is Load on a file.
func LoadFile(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Default(), fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	return Load(f, path)
}

// Validate checks the configuration after flags and tuning are applied,
// and returns every problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Policies) == 0 {
		bad("policies: give at least one policy file or directory")
	}
	if c.Mode != "enforce" && c.Mode != "audit" {
		bad("mode: %q is not enforce or audit", c.Mode)
	}
	if c.FailureMode != FailOpen && c.FailureMode != FailClosed {
		bad("failureMode: %q is not open or closed", c.FailureMode)
	}
	if c.Backend != BackendAuto && c.Backend != BackendBPF && c.Backend != BackendFanotify {
		bad("backend: %q is not auto, bpf or fanotify", c.Backend)
	}
	if c.BPF.MaxFiles < 0 {
		bad("bpf.maxFiles: %d must not be negative", c.BPF.MaxFiles)
	}
	if c.Deadline < time.Millisecond || c.Deadline > time.Minute {
		bad("deadline: %s is outside 1ms..1m", c.Deadline)
	}
	if c.Workers < 1 || c.Workers > 1024 {
		bad("workers: %d is outside 1..1024", c.Workers)
	}
	if c.QueueSize < 1 {
		bad("queueSize: %d must be positive", c.QueueSize)
	}
	if !filepath.IsAbs(c.HostRoot) {
		bad("hostRoot: %q must be an absolute path", c.HostRoot)
	}
	for _, m := range c.MarkOnly {
		if !filepath.IsAbs(m) {
			bad("markOnly: %q must be an absolute path", m)
		}
	}
	if c.Audit.File != "" && !filepath.IsAbs(c.Audit.File) {
		bad("audit.file: %q must be an absolute path", c.Audit.File)
	}
	if c.Audit.MaxSizeMB < 1 || c.Audit.Backups < 0 || c.Audit.QueueSize < 1 {
		bad("audit: maxSizeMB (%d) and queueSize (%d) must be positive and backups (%d) not negative", c.Audit.MaxSizeMB, c.Audit.QueueSize, c.Audit.Backups)
	}
	if c.MetricsAddress != "" {
		if err := checkHostPort(c.MetricsAddress); err != nil {
			bad("metricsAddress: %q must be host:port (127.0.0.1:9477, 0.0.0.0:9477) or empty: %v", c.MetricsAddress, err)
		}
	}
	if c.AdminSocket != "" && !filepath.IsAbs(c.AdminSocket) {
		bad("adminSocket: %q must be an absolute path", c.AdminSocket)
	}
	if c.BPF.PinPath != "" && !filepath.IsAbs(c.BPF.PinPath) {
		bad("bpf.pinPath: %q must be an absolute path", c.BPF.PinPath)
	}
	for _, k := range c.AdminKeys {
		if !filepath.IsAbs(k) {
			bad("adminKeys: %q must be an absolute path", k)
		}
	}
	if c.StatusSocket != "" && !filepath.IsAbs(c.StatusSocket) {
		bad("statusSocket: %q must be an absolute path", c.StatusSocket)
	}
	for _, e := range c.HypervisorExemption.Executables {
		if !filepath.IsAbs(e) {
			bad("hypervisorExemption.executables: %q must be an absolute path", e)
		}
	}
	return errors.Join(errs...)
}

// checkHostPort accepts what net.Listen("tcp", addr) does for a server:
// an optional host (IP address or name) and a numeric port.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not an address or a name", host)
	}
	return nil
}

// ExemptionEnabled reports whether the hypervisor exemption is on.
func (c *Config) ExemptionEnabled() bool {
	return c.HypervisorExemption.Enabled == nil || *c.HypervisorExemption.Enabled
}

// IgnoreMarksEnabled reports whether ignore marks may be used.
func (c *Config) IgnoreMarksEnabled() bool {
	return c.CacheIgnoreMarks == nil || *c.CacheIgnoreMarks
}
