// Command eipclaim keeps a role reachable at one fixed address: it claims
// the role's Elastic IP for this instance and publishes the role's name.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// SIGHUP (a closed terminal, a `kill -HUP` meant as "reload") stops
	// eipclaim as SIGTERM does, gracefully: a move in progress is finished
	// and published, its hook run; it does not reload the configuration.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	args := os.Args[1:]
	if filepath.Base(os.Args[0]) == "bootstrap" {
		// The provided.al2023 runtime runs the function's executable by
		// this name, with no arguments: it is the Lambda controller.
		args = append([]string{"lambda"}, args...)
	}
	err := run(ctx, args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "eipclaim:", err)
	}
	os.Exit(exitcode.Of(err))
}
