//go:build !nok8s

package main

import (
	"log/slog"
	"os"

	"k8s.io/klog/v2"
)

// setupLibraryLogs sends client-go's logs (klog, its own format on stderr
// by default) through log/slog in the same text format as drmfilter's.
// klog's logger is process-wide and must be set before any goroutine
// logs, so main sets it, first.
func setupLibraryLogs() {
	klog.SetSlogLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "client-go"))
}
