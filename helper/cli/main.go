package cli

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tickgate/tickgate/helper/execshim"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/voice"
)

// Main is a program's whole life but the exit: it runs the command line
// os.Args with what w wires and returns the exit code (exitcode.From, the
// one mapping of errors to codes), having printed the error's one line.
func Main(w Wiring) int {
	if execshim.Is(os.Args) {
		// The supervisor's last step before a job's own program (internal),
		// when tickgate-exec is not there to be it.
		code, err := execshim.Main(os.Args)
		voice.PrintError(os.Stderr, err)
		return code
	}
	if os.Getenv("GOGC") == "" {
		// Short-lived processes with small heaps: collect half as often.
		// status --json over 1000 jobs: 147 -> 117 ms, ~10 MB more RSS; a
		// tick's heap never reaches the first collection either way.
		debug.SetGCPercent(200)
	}
	err := Run(signalContext(), os.Args, os.Stdin, os.Stdout, os.Stderr, w)
	code, print := exitcode.From(err)
	if print {
		// One line, whatever text of a job's the message quotes.
		voice.PrintError(os.Stderr, err)
	}
	return code
}

// signalContext is cancelled by SIGTERM, SIGINT or SIGHUP (an operator
// command stops waiting). Its handlers are never removed: the process exits
// right after the command, and removing the last handler waits on the Go
// runtime's signal-mask thread (~0.1 ms of every tickgate process).
func signalContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	return ctx
}
