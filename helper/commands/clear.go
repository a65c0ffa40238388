package commands

import (
	"context"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/metrics"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/textsafe"
)

func clearCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:      "clear",
		Usage:     "re-arm a job: remove its done and/or halted markers",
		UsageText: "tickgate clear [--done] [--halted] JOB",
		Description: `Without --done or --halted, removes both. Removing halted also resets the
consecutive-failure count, so the breaker does not trip again at once.
Example: tickgate clear --halted backfill`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "done", Usage: "remove the done marker"},
			&ucli.BoolFlag{Name: "halted", Usage: "remove the halted marker"},
		},
		Action: func(c *ucli.Context) error {
			g := cli.GlobalsOf(c)
			j, err := knownJob(c, g)
			if err != nil {
				return err
			}
			defer j.Close()
			which := []string{}
			if c.Bool("done") {
				which = append(which, state.MarkerDone)
			}
			if c.Bool("halted") {
				which = append(which, state.MarkerHalted)
			}
			if len(which) == 0 {
				which = []string{state.MarkerDone, state.MarkerHalted}
			}
			var removed []string
			err = j.Locked(c.Context, func() error {
				for _, m := range which {
					old, _ := j.ReadMarker(m)
					ok, err := j.RemoveMarker(m)
					if err != nil {
						return fmt.Errorf("remove %s marker: %w", m, err)
					}
					if ok {
						desc := m
						if old != nil && old.Reason != "" {
							desc += fmt.Sprintf(" (was: %s)", textsafe.Clean(old.Reason))
						}
						removed = append(removed, desc)
					}
				}
				return nil
			})
			if err != nil {
				return exitcode.New(exitcode.Software, "job %s: %v", j.Name, err)
			}
			if err := afterMarkerChange(c.Context, g, j, func(s *state.State) {
				for _, m := range which {
					if m == state.MarkerHalted {
						s.ConsecutiveFailures = 0
					}
				}
			}); err != nil {
				return exitcode.New(exitcode.Software, "job %s: markers cleared, but %v", j.Name, err)
			}
			if len(removed) == 0 {
				fmt.Fprintf(e.Stdout, "job %s: nothing to clear (no %s marker)\n", j.Name, strings.Join(which, " or "))
				return nil
			}
			fmt.Fprintf(e.Stdout, "job %s: removed %s\n", j.Name, strings.Join(removed, "; "))
			return nil
		},
	}
}

// afterMarkerChange applies fn to the job's state (if it has one) and
// rewrites its metrics file, so tickgate_done/halted change at once.
func afterMarkerChange(ctx context.Context, g cli.Globals, j *state.Job, fn func(*state.State)) error {
	st, err := j.Load()
	if err != nil {
		return fmt.Errorf("state not updated: %w", err)
	}
	if st == nil {
		return nil // nothing recorded yet: nothing to update
	}
	var hooks state.Hooks
	if g.MetricsDir != "" {
		hooks.Along = func(st *state.State) error {
			hb := time.Now()
			if st.FinishedAt != nil {
				hb = *st.FinishedAt // the heartbeat is the last tick, not this command
			}
			var until time.Time
			if b, _ := backoff.Read(g.LockDir, st.Lock, g.Owners); b.Active(time.Now()) {
				until = b.Until
			}
			var gt *gate.Gate
			if g.Gate != "" {
				gt, _, _ = gate.Load(g.Gate)
			}
			return metrics.WriteJob(g.MetricsDir, j, st, hb, until, metrics.GateClosedSince(gt, j.Name, hb), g.Owners)
		}
	}
	if _, err := j.Update(ctx, fn, hooks); err != nil {
		return fmt.Errorf("state or metrics not updated: %w", err)
	}
	return nil
}
