package commands

import (
	"fmt"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/voice"
)

func haltCommand(e *cli.Env) *ucli.Command {
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
			g := cli.GlobalsOf(c)
			j, err := knownJob(c, g)
			if err != nil {
				return err
			}
			defer j.Close()
			m := state.Marker{At: time.Now().UTC(), Reason: "operator: " + reason}
			if err := j.Locked(c.Context, func() error { return j.WriteMarker(state.MarkerHalted, m) }); err != nil {
				return exitcode.New(exitcode.Software, "job %s: write halted marker: %v", j.Name, err)
			}
			fmt.Fprintf(e.Stdout, "job %s: halted (%s); `tickgate clear %s` re-arms it\n", j.Name, reason, j.Name)
			if err := afterMarkerChange(c.Context, g, j, func(*state.State) {}); err != nil {
				voice.Warn(e.Stderr, "job %s: halted, but %v", j.Name, err)
			}
			return nil
		},
	}
}
