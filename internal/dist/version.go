package dist

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// semverRE is the shape of versions packages accept: semantic versioning
// with an optional leading v (v1.2.3, 1.2.3-rc.1, 0.0.0-dev+g1a2b3c4).
var semverRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// CheckVersion reports whether v is a semantic version (leading v allowed),
// which nfpm turns into Debian and RPM versions that sort correctly.
func CheckVersion(v string) error {
	if !semverRE.MatchString(v) {
		return fmt.Errorf("version %q is not a semantic version such as v1.2.3 or 1.2.3-rc.1", v)
	}
	return nil
}

// DefaultVersion is the version of an unreleased build: 0.0.0-dev, with the
// checkout's commit as build metadata when git can tell it.
func DefaultVersion(ctx context.Context, repoDir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD")
	cmd.Dir = repoDir
	out, err := cmd.Output()
	rev := strings.TrimSpace(string(out))
	if err != nil || rev == "" {
		return "0.0.0-dev"
	}
	return "0.0.0-dev+g" + rev
}

// ImageTag turns a version into a valid image tag: '+' (build metadata) is
// not allowed in tags and becomes '-'.
func ImageTag(version string) string {
	return strings.ReplaceAll(version, "+", "-")
}
