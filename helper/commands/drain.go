package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/textsafe"
)

// DrainPoll is how often drain looks again; it reacts within one poll.
const DrainPoll = 50 * time.Millisecond

func drainCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:      "drain",
		Usage:     "wait until no job on this host is running",
		UsageText: "tickgate drain [--timeout DURATION] [--json]",
		Description: `Exits 0 once nothing runs (within 50 ms of the last job ending), or 1 at
the timeout, listing what still runs with pid and how long it has run. A job
counts as running while its state says so and its process lives, or while its
lock group's lock is held. Drain takes no lock, so it never makes a job skip;
close the gate first so that no new job starts.
Example: tickgate gate close --reason deploy --token $ID && tickgate drain --timeout 10m`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "timeout", Value: "0", Usage: "give up after `DURATION` (0: wait forever)"},
			&ucli.BoolFlag{Name: "json", Usage: `print {"drained": bool, "waited_seconds": n, "running": [...]}`},
		},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			timeout, err := cli.DurationFlag(c, "timeout")
			if err != nil {
				return exitcode.UsageError("%v", err)
			}
			g := cli.GlobalsOf(c)
			start := time.Now()
			ctx := c.Context
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			var running []status.Running
			for {
				running, err = status.FindRunning(g.Store(), g.LockDir, time.Now())
				if err != nil {
					return exitcode.New(exitcode.Software, "drain: %v", err)
				}
				if len(running) == 0 || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(DrainPoll):
				}
			}
			drained := len(running) == 0
			if c.Bool("json") {
				if err := printJSON(e.Stdout, map[string]any{"drained": drained,
					"waited_seconds": time.Since(start).Seconds(), "running": nonNil(running)}); err != nil {
					return err
				}
			} else if drained {
				fmt.Fprintf(e.Stdout, "drained: no job running (waited %s)\n", time.Since(start).Round(time.Millisecond))
			} else {
				fmt.Fprintf(e.Stdout, "not drained after %s; still running:\n", time.Since(start).Round(time.Millisecond))
				for _, r := range running {
					fmt.Fprintf(e.Stdout, "  %s\n", describeRunning(r))
				}
			}
			if !drained {
				names := make([]string, 0, len(running))
				for _, r := range running {
					names = append(names, describeRunning(r))
				}
				return exitcode.New(exitcode.Failure, "drain timed out after %s; still running: %s", timeout, strings.Join(names, "; "))
			}
			return nil
		},
	}
}

func nonNil(r []status.Running) []status.Running {
	if r == nil {
		return []status.Running{}
	}
	return r
}

func describeRunning(r status.Running) string {
	if r.Left != "" {
		return textsafe.Clean(fmt.Sprintf("lock group %s: %s", r.Lock, r.Left))
	}
	if r.Job == "" {
		return fmt.Sprintf("lock group %s held by pid %d", textsafe.Clean(r.Lock), r.PID)
	}
	return fmt.Sprintf("%s (pid %d, running %s, lock %s)", r.Job, r.PID, time.Duration(r.RunningSeconds*float64(time.Second)).Round(time.Second), textsafe.Clean(r.Lock))
}
