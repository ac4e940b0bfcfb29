//go:build nok8s

package cli

import (
	"context"
	"errors"
	"log/slog"

	"github.com/drmfilter/drmfilter/internal/config"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

// startCluster, in a build without Kubernetes support (-tags nok8s: the
// agent's packages for machines outside a cluster), refuses --kubernetes.
func startCluster(_ context.Context, f *runFlags, _ config.Config, _ *slog.Logger) (clusterNode, error) {
	if !f.kubernetes {
		return nil, nil
	}
	return nil, withCode(exitcode.Unsupported, errors.New("--kubernetes: this drmfilter was built without Kubernetes support (-tags nok8s); in a cluster run the drmfilter image, which has it"))
}
