package azure

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// The Custom Script extension for Linux.
const (
	ExtensionPublisher   = "Microsoft.Azure.Extensions"
	ExtensionType        = "CustomScript"
	ExtensionVersion     = "2.1"
	DefaultExtensionName = "drmfilter-install"
)

// Install is what the extension is asked to install on each machine.
type Install struct {
	// PackageURL is where the machine downloads the .deb or .rpm; it may
	// carry a SAS token, so it is never printed unredacted.
	PackageURL string
	// SHA256 is the package's expected SHA-256, 64 hex digits.
	SHA256 string
	// ScriptURL is where the extension downloads install.sh from.
	ScriptURL string
	// PolicyURLs are policy files install.sh places on the machine.
	PolicyURLs []string
	// Mode is audit or enforce; empty leaves the package's default.
	Mode string
	// ExtensionName names the extension resource on the VM or scale set.
	ExtensionName string
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate reports the first thing wrong with i, naming the flag.
func (i Install) Validate() error {
	if err := checkURL("--package-url", i.PackageURL); err != nil {
		return err
	}
	if !sha256Hex.MatchString(i.SHA256) {
		return errors.New("--sha256: want 64 lowercase hex digits")
	}
	if err := checkURL("--script-url", i.ScriptURL); err != nil {
		return err
	}
	for _, u := range i.PolicyURLs {
		if err := checkURL("--policy-url", u); err != nil {
			return err
		}
	}
	switch i.Mode {
	case "", "audit", "enforce":
	default:
		return fmt.Errorf("--mode: %q is not audit or enforce", i.Mode)
	}
	if i.ExtensionName == "" {
		return errors.New("--extension-name: must not be empty")
	}
	return nil
}

func checkURL(flag, raw string) error {
	if raw == "" {
		return fmt.Errorf("%s is required", flag)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the URL, which may hold a token.
		return fmt.Errorf("%s: not a URL: %s", flag, RedactURL(raw))
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%s: %s is not an http(s) URL", flag, RedactURL(raw))
	}
	return nil
}

// scriptName is the file name the extension gives the downloaded script:
// the last element of the URL's path.
func (i Install) scriptName() string {
	u, err := url.Parse(i.ScriptURL)
	if err != nil || path.Base(u.Path) == "/" || path.Base(u.Path) == "." {
		return "install.sh"
	}
	return path.Base(u.Path)
}

// command is the extension's commandToExecute; show maps each URL before
// it is quoted (identity for the real command, RedactURL for printing).
func (i Install) command(show func(string) string) string {
	args := []string{"sh", shellQuote(i.scriptName()),
		"--package-url", shellQuote(show(i.PackageURL)),
		"--sha256", shellQuote(i.SHA256)}
	for _, p := range i.PolicyURLs {
		args = append(args, "--policy-url", shellQuote(show(p)))
	}
	if i.Mode != "" {
		args = append(args, "--mode", i.Mode)
	}
	return strings.Join(args, " ")
}

// protectedSettings holds everything that may carry a secret: Azure
// encrypts protected settings and never returns them.
func (i Install) protectedSettings() map[string]any {
	return map[string]any{
		"fileUris":         []string{i.ScriptURL},
		"commandToExecute": i.command(func(s string) string { return s }),
	}
}

// redactedSettings is protectedSettings as printed.
func (i Install) redactedSettings() map[string]any {
	return map[string]any{
		"fileUris":         []string{RedactURL(i.ScriptURL)},
		"commandToExecute": i.command(RedactURL),
	}
}

// publicSettings is empty on purpose: public settings are readable by
// anyone who can read the VM.
func (i Install) publicSettings() map[string]any { return map[string]any{} }

// ForceUpdateTag makes Azure run the extension again even when its settings
// are unchanged: the package's SHA-256 prefix and the time of the run.
func ForceUpdateTag(sha string, now time.Time) string {
	short := sha
	if len(short) > 12 {
		short = short[:12]
	}
	return short + "-" + now.UTC().Format("20060102T150405Z")
}

// shellQuote quotes s for sh: single quotes, with embedded single quotes
// closed, escaped and reopened.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RedactURL replaces a URL's query string (where SAS tokens live) with
// "?<redacted>".
func RedactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?<redacted>"
	}
	return u
}

var urlWithQuery = regexp.MustCompile(`(https?://[^\s?'"]+)\?[^\s'"]*`)

// RedactText redacts the query string of every URL in s, for text that
// came back from a machine (install.sh may echo the URL it downloads).
func RedactText(s string) string {
	return urlWithQuery.ReplaceAllString(s, "$1?<redacted>")
}
