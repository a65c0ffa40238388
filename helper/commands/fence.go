package commands

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fence"
	"github.com/tickgate/tickgate/helper/runner"
)

func fenceCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:  "fence",
		Usage: "fencing tokens of fleet lock groups, for the resources jobs write",
		Subcommands: []*ucli.Command{{
			Name:      "check",
			Usage:     "exit 0 if this job may still write under its fleet lock, 1 if not",
			UsageText: "tickgate fence check [--store PATH] [--fence N]",
			Description: `Inside a job with lock_scope: fleet (run by tickgate run), asks its
supervisor where the lease stands: exit 0 while it is held (renewed within
half the lease), 1 once it is not (the supervisor is stopping the job; do
not start another write). A check in flight when the stop's SIGTERM reaches
the job's process group dies of it (143): treat any status but 0 as "do not
write".
With --store PATH, also the resource's side of fencing: PATH holds the
highest fence (TICKGATE_FENCE, or --fence) any writer showed; a lower one is
refused (exit 1, "stale fence"), an equal or higher one is recorded, under an
exclusive lock and by atomic rename. Put the store beside what the job
writes, on the same filesystem every host's job writes to; then a holder
that lost its lease (paused longer than the lease, partitioned) and wakes
after another host's holder wrote cannot write over it.
Exit codes: 0 may write, 1 must not, 64 usage, 70 the store or the
supervisor could not be read.
Example (in a job, before each write): tickgate fence check --store /srv/catalogue/.fence || exit 4`,
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "store", Usage: "the resource's fence store `PATH` (created on first use)"},
				&ucli.StringFlag{Name: "fence", Usage: "the writer's fencing token `N` (default: $TICKGATE_FENCE)"},
			},
			Action: func(c *ucli.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				inJob := os.Getenv("TICKGATE_CONTROL_FD") != ""
				store := c.String("store")
				if !inJob && store == "" {
					return exitcode.UsageError("outside a job, give --store PATH (inside one, run by tickgate run, its supervisor is asked)")
				}
				var f int64
				if inJob {
					rep, err := askControl(runner.ControlRequest{Op: "fence"}, 5*time.Second)
					if err != nil {
						return exitcode.New(exitcode.Software, "fence check: %v", err)
					}
					if !rep.OK || rep.Fence == nil {
						return exitcode.New(exitcode.Software, "fence check: %s", rep.Error)
					}
					fc := rep.Fence
					f = fc.Fence
					if !fc.Held {
						return exitcode.New(exitcode.Failure, "fence %d of lock group %s: not held (last renewed %.1fs ago, lease until %s by the database's clock): do not write",
							fc.Fence, fc.Group, fc.ConfirmedSeconds, fc.Until.UTC().Format(time.RFC3339))
					}
					if store == "" {
						fmt.Fprintf(e.Stdout, "fence %d of lock group %s: held (renewed %.1fs ago, lease until %s by the database's clock)\n",
							fc.Fence, fc.Group, fc.ConfirmedSeconds, fc.Until.UTC().Format(time.RFC3339))
						return nil
					}
				}
				if c.IsSet("fence") || !inJob {
					s := c.String("fence")
					if !c.IsSet("fence") {
						s = os.Getenv("TICKGATE_FENCE")
					}
					n, err := strconv.ParseInt(s, 10, 64)
					if err != nil || n <= 0 {
						return exitcode.UsageError("--fence (or TICKGATE_FENCE): %q is not a fencing token (a positive number)", s)
					}
					f = n
				}
				prev, err := fence.Admit(store, f)
				switch {
				case errors.Is(err, fence.ErrStale):
					return exitcode.New(exitcode.Failure, "%v: do not write", err)
				case err != nil:
					return exitcode.New(exitcode.Software, "%v", err)
				}
				if prev < f {
					fmt.Fprintf(e.Stdout, "fence %d admitted at %s (it had seen %d)\n", f, store, prev)
				} else {
					fmt.Fprintf(e.Stdout, "fence %d admitted at %s\n", f, store)
				}
				return nil
			},
		}},
	}
}
