package aws

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// InstallSpec is what to install on a machine: where to fetch
// scripts/install.sh and the arguments to run it with.
type InstallSpec struct {
	// ScriptURL is where curl fetches install.sh from.
	ScriptURL string
	// PackageURL is the .deb or .rpm to install (--package-url).
	PackageURL string
	// SHA256 is the package's hex SHA-256 (--sha256).
	SHA256 string
	// PolicyURLs are policy files to install (--policy-url, repeated).
	PolicyURLs []string
	// Mode is "audit", "enforce" or empty for the package's default (--mode).
	Mode string
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// OptionError is a rollout option that is missing or invalid; it is
// reported before any AWS call.
type OptionError struct{ Err error }

func (e *OptionError) Error() string { return e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

// Validate names the first field that install.sh would reject.
func (s InstallSpec) Validate() error {
	if err := checkURL("--script-url", s.ScriptURL); err != nil {
		return err
	}
	if s.PackageURL == "" {
		return errors.New("--package-url is required")
	}
	if err := checkURL("--package-url", s.PackageURL); err != nil {
		return err
	}
	if !hexSHA256.MatchString(s.SHA256) {
		return fmt.Errorf("--sha256 %q is not 64 hexadecimal digits", s.SHA256)
	}
	for _, p := range s.PolicyURLs {
		if err := checkURL("--policy-url", p); err != nil {
			return err
		}
	}
	switch s.Mode {
	case "", "audit", "enforce":
	default:
		return fmt.Errorf("--mode %q is not audit or enforce", s.Mode)
	}
	return nil
}

func checkURL(flag, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http or https URL", flag, Redact(raw))
	}
	return nil
}

// Commands are the shell lines that fetch install.sh with curl and run it
// with bash (install.sh is a bash script; every EC2 Linux AMI with the SSM
// agent or cloud-init has bash). They stop at the first failure and remove
// the downloaded script on exit.
func (s InstallSpec) Commands() []string {
	args := []string{"--package-url", shellQuote(s.PackageURL), "--sha256", shellQuote(s.SHA256)}
	for _, p := range s.PolicyURLs {
		args = append(args, "--policy-url", shellQuote(p))
	}
	if s.Mode != "" {
		args = append(args, "--mode", s.Mode)
	}
	return []string{
		"set -eu",
		`drmfilter_script="$(mktemp)"`,
		`trap 'rm -f "$drmfilter_script"' EXIT`,
		`curl -fsSL --retry 5 --retry-delay 2 -o "$drmfilter_script" ` + shellQuote(s.ScriptURL),
		`bash "$drmfilter_script" ` + strings.Join(args, " "),
	}
}

// URLs are every URL of the spec, for redaction.
func (s InstallSpec) URLs() []string {
	return append([]string{s.ScriptURL, s.PackageURL}, s.PolicyURLs...)
}

// shellQuote quotes s for sh: single quotes, with each ' written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
