package version

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	// releaseTag is a tag such as v1.2.3 or v1.3.0-rc.1 (no build metadata).
	releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$`)
	// pseudoVersion is the tail Go gives an untagged commit
	// (v0.0.0-20261126223100-0123456789ab).
	pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}$`)
)

// InstallScriptURL is scripts/install.sh at the release tag of version
// ("v1.2.3" or "1.2.3") on GitHub: what the cloud rollouts download on each
// machine unless told another URL. A build that is not a release (devel, a
// pseudo-version, a dirty tree) has no tagged script, and the error says to
// pass --script-url.
func InstallScriptURL(version string) (string, error) {
	v := version
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	if !IsRelease(v) {
		return "", fmt.Errorf("this build (%s) is not a release, so install.sh has no tagged URL: pass --script-url", version)
	}
	return "https://raw.githubusercontent.com/drmfilter/drmfilter/" + v + "/scripts/install.sh", nil
}

// IsRelease reports whether version is a release tag (v1.2.3,
// v1.3.0-rc.1), as opposed to a development build (devel, a Go
// pseudo-version, a dirty tree), for which no published artifact exists.
func IsRelease(version string) bool {
	return releaseTag.MatchString(version) && !pseudoVersion.MatchString(version)
}
