//go:build !linux

package agent

import "github.com/drmfilter/drmfilter/internal/proc"

// runsCode recognises no loader or interpreter off Linux.
func (a *Agent) runsCode(*proc.Process, *job) string { return "" }
