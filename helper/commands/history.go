package commands

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/textsafe"
)

func historyCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:      "history",
		Usage:     "a job's latest runs, newest first",
		UsageText: "tickgate history [--json] [--limit N] JOB",
		Description: `The runs of the job's command that state.json keeps (the last 50, or
the job's history field): when each started, how long it took, its result,
exit code, attempt and reason. Skipped ticks are not runs: status shows the
last one.
Example: tickgate history --limit 5 backfill`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: `print {"job": …, "runs": [newest first]}`},
			&ucli.IntFlag{Name: "limit", Usage: "at most `N` runs (0: all kept)"},
		},
		Action: func(c *ucli.Context) error {
			g := cli.GlobalsOf(c)
			j, err := knownJob(c, g)
			if err != nil {
				return err
			}
			defer j.Close()
			st, err := j.Load()
			if err != nil {
				return exitcode.New(exitcode.Failure, "history: job %s: %v", j.Name, err)
			}
			var runs []state.Run
			if st != nil {
				runs = st.Runs()
			}
			slices.Reverse(runs)
			if n := c.Int("limit"); n > 0 && len(runs) > n {
				runs = runs[:n]
			}
			if runs == nil {
				runs = []state.Run{}
			}
			if c.Bool("json") {
				return printJSON(e.Stdout, struct {
					Job  string      `json:"job"`
					Runs []state.Run `json:"runs"`
				}{j.Name, runs})
			}
			if len(runs) == 0 {
				fmt.Fprintf(e.Stdout, "job %s has no runs recorded\n", j.Name)
				return nil
			}
			now := time.Now()
			tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "STARTED\tAGO\tDURATION\tRESULT\tEXIT\tATTEMPT\tRUN ID\tREASON")
			for _, r := range runs {
				started, code, attempt := "-", "-", "-"
				if r.StartedAt != nil {
					started = r.StartedAt.UTC().Format(time.RFC3339)
				}
				if r.ExitCode != nil {
					code = fmt.Sprint(*r.ExitCode)
				}
				if r.Attempt > 0 {
					attempt = fmt.Sprint(r.Attempt)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", started, short(r.StartedAt, now),
					(time.Duration(r.DurationSeconds * float64(time.Second))).Round(time.Millisecond), textsafe.Clean(r.Result), code, attempt, textsafe.Clean(r.RunID), clip(orDash(r.Reason), 70))
			}
			return tw.Flush()
		},
	}
}
