//go:build !linux

package agent

import (
	"context"
	"errors"

	"github.com/drmfilter/drmfilter/internal/bpflsm"
	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/policy"
)

func chooseBackend(want string, _ *policy.Set, _ func() bpflsm.Availability) (string, string, error) {
	if want == config.BackendBPF {
		return "", "", errors.New("backend bpf: BPF LSM exists only on Linux")
	}
	return config.BackendFanotify, "BPF LSM exists only on Linux", nil
}

func (a *Agent) runBPF(context.Context) error {
	return errors.New("backend bpf: BPF LSM exists only on Linux")
}

func (a *Agent) reloadBPF(*policyState) error { return nil }
