// Command tickgate is the helper behind every tickgate-JOB.service: it runs
// jobs under lock groups, the rollout gate and persistent markers, and gives
// operators gate/drain/status/clear/halt. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/execshim"
	"github.com/tickgate/tickgate/helper/exitcode"
)

func main() {
	if execshim.Is(os.Args) {
		// The supervisor's last step before a job's own program (internal).
		code, err := execshim.Main(os.Args)
		fmt.Fprintf(os.Stderr, "tickgate: %v\n", err)
		os.Exit(code)
	}
	if os.Getenv("GOGC") == "" {
		// Short-lived processes with small heaps: collect half as often.
		// status --json over 1000 jobs: 147 -> 117 ms, ~10 MB more RSS; a
		// tick's heap never reaches the first collection either way.
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	err := cli.Run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	code, print := exitcode.From(err)
	if print {
		fmt.Fprintf(os.Stderr, "tickgate: %v\n", err)
	}
	os.Exit(code)
}
