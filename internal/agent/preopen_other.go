//go:build !linux

package agent

import "context"

// reportOpenBeforeStart has nothing to look at off Linux.
func (a *Agent) reportOpenBeforeStart(context.Context, *policyState) {}
