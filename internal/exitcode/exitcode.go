// Package exitcode is the one list of drmfilter's process exit codes.
//
// Scripts and service managers branch on these numbers, so they are stable:
// a code that is retired stays reserved and is never reused for something else.
package exitcode

const (
	// OK: the command did what was asked.
	OK = 0
	// Failure: the command ran but its answer is negative or it failed,
	// for example `policy check` found invalid policies.
	Failure = 1
	// Usage: the command line itself is wrong (unknown flag, missing argument).
	Usage = 2
	// PolicyInvalid: a command that needs policies could not load them.
	PolicyInvalid = 3
	// Unsupported: the kernel or platform lacks a feature the command needs.
	Unsupported = 4
	// Denied: `policy explain` decided deny (only with --exit-code).
	Denied = 5
)
