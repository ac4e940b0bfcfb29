//go:build nok8s

package main

// setupLibraryLogs has nothing to do in a build without client-go.
func setupLibraryLogs() {}
