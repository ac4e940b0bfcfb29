package aws

import (
	"net/url"
	"regexp"
	"strings"
)

// redacted replaces a URL's query string in everything drmfilter prints:
// presigned S3 URLs carry a signature and sometimes a session token there.
const redacted = "<redacted>"

var urlPattern = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]+`)

// Redact replaces the query string of every URL in s with
// "<redacted>".
func Redact(s string) string {
	return urlPattern.ReplaceAllStringFunc(s, func(raw string) string {
		base, query, found := strings.Cut(raw, "?")
		if !found || query == "" {
			return raw
		}
		return base + "?" + redacted
	})
}

// hasQuery reports whether raw is a URL with a query string.
func hasQuery(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.RawQuery != ""
}

// redactAll redacts each of lines.
func redactAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = Redact(l)
	}
	return out
}
