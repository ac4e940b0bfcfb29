// Package examples ships the example policies inside the binary, so that
// `drmfilter run --demo` works wherever drmfilter is installed.
package examples

import "embed"

// FS holds every example policy (*.yaml).
//
//go:embed *.yaml
var FS embed.FS
