// Command depsonly is a benchmark reference (BenchmarkRunVsFlock): execonly
// linked with the libraries tickgate is built on, whose package
// initialisation every tickgate process pays before main. Built as is, it
// links what tickgate-tick links (urfave/cli, go-systemd's journal); built
// with -tags full (full.go), also what only the full helper links (pgx,
// go-systemd's D-Bus, net/http for notifications).
package main

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	_ "github.com/coreos/go-systemd/v22/journal"
	_ "github.com/urfave/cli/v2"
)

func main() {
	if os.Getenv("DEPSONLY_SIGNALS") != "" {
		// As a supervisor must, to forward systemd's SIGTERM to its command:
		// the first Notify starts the runtime's signal goroutines (one on a
		// thread of its own). Never removed, as tickgate's are not.
		signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	}
	c := exec.Command(os.Args[1], os.Args[2:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		os.Exit(1)
	}
}
