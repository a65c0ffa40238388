package commands

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/status"
	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/voice"
)

func statusCommand(e *cli.Env) *ucli.Command {
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
					voice.Warn(e.Stderr, "status --fleet: %s", sk)
				}
				if c.Bool("json") {
					if c.Bool("printable") {
						textsafe.Strings(fs)
					}
					return printJSON(e.Stdout, fs)
				}
				printFleetStatus(e.Stdout, fs)
				return nil
			}
			jobs := c.Args().Slice()
			for _, j := range jobs {
				if err := checkJobName(j); err != nil {
					return err
				}
			}
			g := cli.GlobalsOf(c)
			rep, err := status.Collect(c.Context, status.Options{Version: cli.Version, Store: g.Store(), GatePath: g.Gate, Jobs: jobs, Systemd: !c.Bool("no-systemd"), LockDir: g.LockDir,
				History: c.Int("history"), Tolerance: c.Float64("tolerance")})
			if err != nil {
				return exitcode.New(exitcode.Software, "status: %v", err)
			}
			if c.Bool("json") {
				if c.Bool("printable") {
					rep.Printable()
				}
				if err := rep.WriteJSON(e.Stdout); err != nil {
					return err
				}
			} else {
				printStatus(e.Stdout, rep)
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

// printLockGroups is one line of the lock groups a run holds, each with its
// holders: "lock groups: api 2/2 held (harvest pid 812, backfill pid 815)".
func printLockGroups(w io.Writer, gs []status.LockGroupView) {
	if len(gs) == 0 {
		return
	}
	parts := make([]string, 0, len(gs))
	for _, g := range gs {
		hs := make([]string, 0, len(g.Holders))
		for _, h := range g.Holders {
			switch {
			case h.Left != "":
				hs = append(hs, "left behind: "+textsafe.Clean(h.Left))
			case h.Job != "":
				hs = append(hs, fmt.Sprintf("%s pid %d", textsafe.Clean(h.Job), h.PID))
			default:
				hs = append(hs, fmt.Sprintf("pid %d", h.PID))
			}
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d held (%s)", textsafe.Clean(g.Lock), len(g.Holders), g.Slots, strings.Join(hs, ", ")))
	}
	fmt.Fprintf(w, "lock groups: %s\n", strings.Join(parts, "; "))
}

func printStatus(w io.Writer, rep *status.Report) {
	now := rep.GeneratedAt
	fmt.Fprintf(w, "tickgate %s on %s\n", rep.Version, rep.Host)
	printGate(w, rep.Gate, now)
	if rep.Systemd.Error != "" {
		fmt.Fprintf(w, "systemd: %s (timer columns empty)\n", textsafe.Clean(rep.Systemd.Error))
	}
	printLockGroups(w, rep.LockGroups)
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
