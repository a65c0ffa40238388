package commands

import (
	"fmt"
	"io"
	"os"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/timespec"
)

const backoffHelp = `Inside a job (its command, or anything it starts): tells tickgate that the
resource behind the job's lock group said to back off (HTTP 429/503 with
Retry-After, a quota). Every job of the lock group then skips (exit 75,
reason "backoff: …") until the back-off ends; with a fleet-scoped lock group
(lock_scope: fleet) on every host. The request goes to the job's supervisor
over the descriptor in TICKGATE_CONTROL_FD; a job can only back off its own
lock group, and a back-off only ever extends.

As an operator (root): --lock NAME sets one by hand (--fleet: the fleet's,
with the admin DSN); --clear removes one.

Examples (in a job):  tickgate backoff --for 15m --reason "429 from api.example"
                      tickgate backoff --until 2026-11-24T18:00:00Z --reason "quota resets"
As an operator:       tickgate backoff --clear --lock api`

func backoffCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:        "backoff",
		Usage:       "make every job of a lock group skip until a time (the Retry-After of the resource it shares)",
		UsageText:   "tickgate backoff (--for DURATION | --until TIME) --reason TEXT [--lock NAME] [--fleet] | --clear --lock NAME [--fleet]",
		Description: backoffHelp,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "for", Usage: "back off for `DURATION` from now"},
			&ucli.StringFlag{Name: "until", Usage: "back off until `TIME`"},
			&ucli.StringFlag{Name: "reason", Usage: "what the resource said (required)"},
			&ucli.StringFlag{Name: "lock", Usage: "the lock group `NAME` (default inside a job: its own, $TICKGATE_LOCK)"},
			&ucli.BoolFlag{Name: "clear", Usage: "remove the back-off (an operator's command)"},
			&ucli.BoolFlag{Name: "json", Usage: "print the back-off that stands as JSON"},
			fleetFlag,
		},
		Action: func(c *ucli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			g := cli.GlobalsOf(c)
			own := os.Getenv("TICKGATE_LOCK")
			lock := c.String("lock")
			inJob := os.Getenv("TICKGATE_CONTROL_FD") != "" && (lock == "" || lock == own) && !c.Bool("fleet") && !c.Bool("clear")
			if lock == "" {
				if !inJob {
					return exitcode.UsageError("--lock NAME: outside a job, say which lock group")
				}
				lock = own
			}
			if err := state.ValidName("lock", lock); err != nil {
				return exitcode.UsageError("--lock: %v", err)
			}
			if c.Bool("clear") {
				if c.IsSet("for") || c.IsSet("until") {
					return exitcode.UsageError("--clear takes no --for or --until")
				}
				return clearBackoff(c, e, g, lock)
			}
			until, err := backoffUntil(c)
			if err != nil {
				return err
			}
			reasonText := c.String("reason")
			if err := backoff.Validate(until, reasonText, time.Now()); err != nil {
				return exitcode.UsageError("%v", err)
			}
			var stands *backoff.B
			switch {
			case inJob:
				stands, err = askSupervisor(until, reasonText)
			case c.Bool("fleet"):
				fc, ferr := fleetClient(c, g.FleetAdminDSNFile)
				if ferr != nil {
					return ferr
				}
				defer fc.Close()
				stands, err = fc.ExtendBackoff(c.Context, backoff.B{Lock: lock, Until: until, Reason: reasonText, SetBy: "operator"})
			default:
				stands, err = backoff.Extend(c.Context, g.LockDir, backoff.B{Lock: lock, Until: until.UTC(), Reason: reasonText,
					SetBy: "operator", SetAt: time.Now().UTC()}, g.Owners)
			}
			if err != nil {
				return exitcode.New(exitcode.Failure, "backoff: lock group %s: %v", lock, err)
			}
			return reportBackoff(e.Stdout, c.Bool("json"), stands, until)
		},
	}
}

func backoffUntil(c *ucli.Context) (time.Time, error) {
	switch {
	case c.IsSet("for") == c.IsSet("until"):
		return time.Time{}, exitcode.UsageError("give one of --for DURATION or --until TIME")
	case c.IsSet("for"):
		d, err := timespec.ParseDuration(c.String("for"))
		if err != nil {
			return time.Time{}, exitcode.UsageError("--for: %v", err)
		}
		return time.Now().Add(d).UTC(), nil
	default:
		t, err := timeFlag(c, "until", time.Now())
		if err != nil {
			return time.Time{}, err
		}
		return *t, nil
	}
}

func reportBackoff(w io.Writer, asJSON bool, b *backoff.B, asked time.Time) error {
	if asJSON {
		return printJSON(w, b)
	}
	if b.Until.After(asked) {
		fmt.Fprintf(w, "lock group %s already backs off longer, until %s: %s (set by %s)\n", b.Lock, b.Until.Format(time.RFC3339), textsafe.Clean(b.Reason), textsafe.Clean(b.SetBy))
		return nil
	}
	fmt.Fprintf(w, "lock group %s backs off until %s: %s\n", b.Lock, b.Until.Format(time.RFC3339), textsafe.Clean(b.Reason))
	return nil
}

func clearBackoff(c *ucli.Context, e *cli.Env, g cli.Globals, lock string) error {
	var was *backoff.B
	var err error
	if c.Bool("fleet") {
		fc, ferr := fleetClient(c, g.FleetAdminDSNFile)
		if ferr != nil {
			return ferr
		}
		defer fc.Close()
		was, err = fc.ClearBackoff(c.Context, lock)
	} else {
		was, err = backoff.Clear(c.Context, g.LockDir, lock, g.Owners)
	}
	if err != nil {
		return exitcode.New(exitcode.Failure, "backoff --clear: lock group %s: %v", lock, err)
	}
	if was == nil {
		fmt.Fprintf(e.Stdout, "lock group %s had no back-off\n", lock)
		return nil
	}
	fmt.Fprintf(e.Stdout, "back-off of lock group %s cleared (was until %s: %s)\n", lock, was.Until.UTC().Format(time.RFC3339), textsafe.Clean(was.Reason))
	return nil
}
