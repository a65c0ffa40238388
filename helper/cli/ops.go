//go:build !tickonly

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/metrics"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/voice"
)

// DrainPoll is how often drain looks again; it reacts within one poll.
const DrainPoll = 50 * time.Millisecond

func opsCommands(e *env) []*ucli.Command {
	return []*ucli.Command{gateCommand(e), drainCommand(e), statusCommand(e), clearCommand(e), haltCommand(e), fleetCommand(e), catchUpCommand(e), backoffCommand(e), historyCommand(e), fenceCommand(e), completeCommand(e)}
}

func drainCommand(e *env) *ucli.Command {
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
			timeout, err := durationFlag(c, "timeout")
			if err != nil {
				return exitcode.UsageError("%v", err)
			}
			g := getGlobals(c)
			start := time.Now()
			ctx := c.Context
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			var running []status.Running
			for {
				running, err = status.FindRunning(g.store(), g.LockDir, time.Now())
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
				if err := printJSON(e.stdout, map[string]any{"drained": drained,
					"waited_seconds": time.Since(start).Seconds(), "running": nonNil(running)}); err != nil {
					return err
				}
			} else if drained {
				fmt.Fprintf(e.stdout, "drained: no job running (waited %s)\n", time.Since(start).Round(time.Millisecond))
			} else {
				fmt.Fprintf(e.stdout, "not drained after %s; still running:\n", time.Since(start).Round(time.Millisecond))
				for _, r := range running {
					fmt.Fprintf(e.stdout, "  %s\n", describeRunning(r))
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

func statusCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "status",
		Usage:     "one view of the gate, every job's timer, last result, markers and running pid",
		UsageText: "tickgate status [--json] [--no-systemd] [JOB...] | --fleet [--json]",
		Description: `Jobs are those with a state directory and those with a tickgate-JOB.timer
unit (read from systemd over D-Bus when reachable; without systemd the timer
columns are empty). --json prints the stable schema documented in docs/operating.md.
Example: tickgate status --json | jq '.jobs[] | select(.halted != null) | .job'`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "print JSON (schema 1)"},
			&ucli.BoolFlag{Name: "no-systemd", Usage: "do not ask systemd for timers"},
			&ucli.IntFlag{Name: "history", Value: 10, Usage: "with --json: each job's last `N` runs, newest first (0: none)"},
			&ucli.Float64Flag{Name: "tolerance", Value: status.DefaultTolerance, Usage: "a job is late after `X` expected intervals without a success"},
			&ucli.BoolFlag{Name: "fleet", Usage: "every host's jobs, the fleet gate and the fleet lock holders, from the fleet database"},
			&ucli.BoolFlag{Name: "printable", Usage: "with --json: every text that came from a job, a state file or the fleet escaped as the table prints it (\\x1b), for consumers that print the values (the Ansible fact)"},
		},
		Action: func(c *ucli.Context) error {
			if c.Bool("fleet") {
				if err := noArgs(c); err != nil {
					return err
				}
				fs, err := collectFleet(c)
				if err != nil {
					return err
				}
				for _, sk := range fs.Skipped {
					voice.Warn(e.stderr, "status --fleet: %s", sk)
				}
				if c.Bool("json") {
					if c.Bool("printable") {
						textsafe.Strings(fs)
					}
					return printJSON(e.stdout, fs)
				}
				printFleetStatus(e.stdout, fs)
				return nil
			}
			jobs := c.Args().Slice()
			for _, j := range jobs {
				if err := checkJobName(j); err != nil {
					return err
				}
			}
			g := getGlobals(c)
			rep, err := status.Collect(c.Context, status.Options{Version: Version, Store: g.store(), GatePath: g.Gate, Jobs: jobs, Systemd: !c.Bool("no-systemd"), LockDir: g.LockDir,
				History: c.Int("history"), Tolerance: c.Float64("tolerance")})
			if err != nil {
				return exitcode.New(exitcode.Software, "status: %v", err)
			}
			if c.Bool("json") {
				if c.Bool("printable") {
					rep.Printable()
				}
				if err := rep.WriteJSON(e.stdout); err != nil {
					return err
				}
			} else {
				printStatus(e.stdout, rep)
			}
			var bad []string
			for _, j := range rep.Jobs {
				if j.Error != "" {
					bad = append(bad, j.Job+": "+j.Error)
				}
			}
			if len(bad) > 0 {
				return exitcode.New(exitcode.Failure, "status: %d job(s) could not be read: %s", len(bad), strings.Join(bad, "; "))
			}
			return nil
		},
	}
}

// short is a time's distance from now: "in 5m0s", "2h0m0s ago", "now".
func short(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d == 0 {
		return "now"
	}
	if d > 0 {
		return "in " + d.String()
	}
	return (-d).String() + " ago"
}

func printStatus(w io.Writer, rep *status.Report) {
	now := rep.GeneratedAt
	fmt.Fprintf(w, "tickgate %s on %s\n", rep.Version, rep.Host)
	printGate(w, rep.Gate, now)
	if rep.Systemd.Error != "" {
		fmt.Fprintf(w, "systemd: %s (timer columns empty)\n", textsafe.Clean(rep.Systemd.Error))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tNEXT\tLAST RUN\tRESULT\tLAST SUCCESS\tFAILS\tMARKER\tPID\tLOCK\tREASON")
	for _, j := range rep.Jobs {
		next := "-"
		if j.Timer != nil {
			next = short(j.Timer.NextElapse, now)
			if j.Timer.ActiveState != "active" {
				next = "timer " + j.Timer.ActiveState
			}
		}
		var lastRun *time.Time
		if j.LastRun != nil {
			lastRun = j.LastRun.StartedAt
		}
		marker := "-"
		switch {
		case j.Halted != nil:
			marker = "halted: " + j.Halted.Reason
		case j.Done != nil:
			marker = "done"
		case j.Paused != nil:
			marker = "paused: " + j.Paused.Reason
		}
		pid := "-"
		if j.PID != nil {
			pid = fmt.Sprint(*j.PID)
		}
		result := orDash(j.Result)
		if j.ExitCode != nil && j.Result != state.Running {
			result = fmt.Sprintf("%s (%d)", result, *j.ExitCode)
		}
		reason := orDash(j.Reason)
		if j.Error != "" {
			reason = "ERROR: " + j.Error
		}
		if j.Late {
			result += " LATE"
			reason = j.LateWhy + "; " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", j.Job, textsafe.Clean(next), short(lastRun, now), textsafe.Clean(result),
			short(j.LastSuccessAt, now), j.ConsecutiveFailures, clip(marker, 40), pid, textsafe.Clean(j.Lock), clip(reason, 60))
	}
	tw.Flush()
	if len(rep.Jobs) == 0 {
		fmt.Fprintln(w, "(no jobs known: no state under the state dir and no tickgate-*.timer units)")
	}
	printBackoffs(w, rep.Backoffs, now)
}

// printBackoffs lists lock groups that back off now, one line each.
func printBackoffs(w io.Writer, bs []backoff.B, now time.Time) {
	for _, b := range bs {
		u := b.Until
		where := ""
		if b.Fleet {
			where = " (fleet)"
		}
		fmt.Fprintf(w, "backoff %s%s until %s: %s (set by %s)\n", textsafe.Clean(b.Lock), where, fmtTime(&u, now), textsafe.Clean(b.Reason), textsafe.Clean(b.SetBy))
	}
}

// clip is text from a job, a state file or the fleet for a table cell:
// escaped (textsafe.Clean: one line, nothing a terminal obeys), cut to n
// bytes on a rune boundary.
func clip(s string, n int) string {
	s = textsafe.Clean(s)
	if len(s) <= n {
		return s
	}
	cut := n - 1
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// knownJob opens the one JOB argument's state dir; a job without one is a
// usage error.
func knownJob(c *ucli.Context, g globals) (*state.Job, error) {
	if c.NArg() != 1 {
		return nil, exitcode.UsageError("give exactly one JOB")
	}
	name := c.Args().First()
	if err := checkJobName(name); err != nil {
		return nil, err
	}
	j, err := g.store().Job(name, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, exitcode.UsageError("unknown job %q: no %s", name, g.store().JobDir(name))
	}
	if err != nil {
		return nil, exitcode.New(exitcode.Software, "job %s: %v", name, err)
	}
	return j, nil
}

func clearCommand(e *env) *ucli.Command {
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
			g := getGlobals(c)
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
				fmt.Fprintf(e.stdout, "job %s: nothing to clear (no %s marker)\n", j.Name, strings.Join(which, " or "))
				return nil
			}
			fmt.Fprintf(e.stdout, "job %s: removed %s\n", j.Name, strings.Join(removed, "; "))
			return nil
		},
	}
}

func haltCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:      "halt",
		Usage:     "trip a job's breaker by hand: it skips until `tickgate clear`",
		UsageText: "tickgate halt --reason TEXT JOB",
		Description: `A running job is not stopped; its next tick skips, and 'tickgate gate check'
inside it answers 75 at its next checkpoint. Exits 0 once the marker is
written, even if refreshing the state or metrics afterwards fails (a warning).
Example: tickgate halt --reason "bad upstream data, see INC-42" backfill`,
		Flags: []ucli.Flag{&ucli.StringFlag{Name: "reason", Usage: "why (required)"}},
		Action: func(c *ucli.Context) error {
			reason, err := required(c, "reason")
			if err != nil {
				return err
			}
			g := getGlobals(c)
			j, err := knownJob(c, g)
			if err != nil {
				return err
			}
			defer j.Close()
			m := state.Marker{At: time.Now().UTC(), Reason: "operator: " + reason}
			if err := j.Locked(c.Context, func() error { return j.WriteMarker(state.MarkerHalted, m) }); err != nil {
				return exitcode.New(exitcode.Software, "job %s: write halted marker: %v", j.Name, err)
			}
			fmt.Fprintf(e.stdout, "job %s: halted (%s); `tickgate clear %s` re-arms it\n", j.Name, reason, j.Name)
			if err := afterMarkerChange(c.Context, g, j, func(*state.State) {}); err != nil {
				voice.Warn(e.stderr, "job %s: halted, but %v", j.Name, err)
			}
			return nil
		},
	}
}

// afterMarkerChange applies fn to the job's state (if it has one) and
// rewrites its metrics file, so tickgate_done/halted change at once.
func afterMarkerChange(ctx context.Context, g globals, j *state.Job, fn func(*state.State)) error {
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

func (g globals) store() state.Store { return state.Store{Dir: g.StateDir, Owners: g.Owners} }

func checkJobName(job string) error {
	if err := state.ValidName("job", job); err != nil {
		return exitcode.UsageError("%v", err)
	}
	return nil
}
