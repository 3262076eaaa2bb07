// Command spacepandad is the spacepanda daemon: one node (one identity,
// one MLS provider in one store) serving local clients on a JSON-RPC
// unix socket. It runs in the foreground with no set-up step: the data
// directory and the identity are made on first run.
//
//	spacepandad [flags]        run the node
//	spacepandad version        print the version
//	spacepandad config         print the effective configuration as TOML
//
// Configuration comes from defaults, <data dir>/config.toml (or
// --config), SPACEPANDA_* variables and flags, in that order (package
// config). SIGINT or SIGTERM shut it down: in-flight writes finish and the
// store closes; a second signal exits at once.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// A second signal is a user who does not want to wait for the
		// graceful path; the store is crash-safe, so exiting is safe.
		<-ctx.Done()
		stop()
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		<-c
		os.Exit(130)
	}()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}
