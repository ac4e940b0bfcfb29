// Command drmfilter is the drmfilter file-protection agent and its tooling.
//
// Everything lives in internal/cli; main only runs the root command and turns
// its result into the process exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/drmfilter/drmfilter/internal/cli"
)

func main() {
	setupLibraryLogs()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
