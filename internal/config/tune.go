package config

import (
	"fmt"
	"runtime"
	"time"
)

// Facts are what tuning needs to know of the environment.
type Facts struct {
	Hypervisor string // systemd-detect-virt name, "none" or "" on physical machines
	Cloud      string
	Nested     bool // this guest runs under a hypervisor that itself runs in a VM
	CPUs       int
}

// DefaultSpin is how long the reader polls for the next event before it
// sleeps. The kernel's wake-up of a sleeping listener dominates the cost of
// an intercepted open here (MACHINE-NOTES: from 0.31 to 0.04 of the native
// rate as the host's load varies); a sequential workload's next open comes
// a few microseconds after the answer.
const DefaultSpin = 200 * time.Microsecond

// Tuning records which settings Tune chose and why, for the start-up log.
type Tuning struct {
	Deadline  time.Duration
	Workers   int
	QueueSize int
	Reason    string
}

// BaseDeadline is the per-event deadline on a physical machine. Under a
// hypervisor it is doubled, as the reference design does: vCPU steal and
// the cost of waking the listener (measured at up to ten times the
// physical cost on a loaded host) stretch every decision. Nested
// virtualization doubles it again.
const BaseDeadline = 250 * time.Millisecond

// Tune fills the settings left at zero from the environment and returns
// what it chose.
func (c *Config) Tune(f Facts) Tuning {
	if f.CPUs <= 0 {
		f.CPUs = runtime.NumCPU()
	}
	virtual := f.Hypervisor != "" && f.Hypervisor != "none"
	deadline := BaseDeadline
	reason := "physical machine"
	if virtual {
		deadline *= 2
		reason = fmt.Sprintf("virtual machine (%s): deadline doubled", f.Hypervisor)
		if f.Nested {
			deadline *= 2
			reason += ", nested: doubled again"
		}
	}
	workers := max(2, f.CPUs)
	queue := 1024 * workers
	if c.Deadline == 0 {
		c.Deadline = deadline
	}
	if c.Workers == 0 {
		c.Workers = workers
	}
	if c.Spin == 0 {
		c.Spin = DefaultSpin
	}
	if c.Spin < 0 {
		c.Spin = 0
	}
	if c.QueueSize == 0 {
		c.QueueSize = queue
	}
	return Tuning{Deadline: c.Deadline, Workers: c.Workers, QueueSize: c.QueueSize, Reason: reason}
}
