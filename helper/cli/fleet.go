package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/fleet"
)

func fleetCommand(e *env) *ucli.Command {
	return &ucli.Command{
		Name:  "fleet",
		Usage: "fleet database chores (the deploy runs them)",
		Subcommands: []*ucli.Command{{
			Name:      "migrate",
			Usage:     "bring the fleet schema to this helper's version and grant the tick role",
			UsageText: "tickgate fleet migrate [--tick-role ROLE]",
			Description: `With the admin role's DSN (--fleet-admin-dsn-file). Idempotent, and safe
when several deploys run it at once; refuses a schema newer than this helper.
Example: tickgate fleet migrate --tick-role tickgate_tick`,
			Flags: []ucli.Flag{&ucli.StringFlag{Name: "tick-role", Value: "tickgate_tick", Usage: "the `ROLE` ticks connect as"}},
			Action: func(c *ucli.Context) error {
				if err := noArgs(c); err != nil {
					return err
				}
				g := getGlobals(c)
				t, err := durationFlag(c, "fleet-timeout")
				if err != nil {
					return exitcode.UsageError("%v", err)
				}
				dsn, err := fleet.ReadDSN(g.FleetAdminDSNFile, g.Owners)
				if err != nil {
					return exitcode.New(exitcode.GateBad, "%v", err)
				}
				applied, err := fleet.Migrate(c.Context, fleet.Options{DSN: dsn, Timeout: t, AppName: "tickgate migrate"}, c.String("tick-role"))
				if err != nil {
					return exitcode.New(exitcode.Failure, "%v", err)
				}
				if len(applied) == 0 {
					fmt.Fprintf(e.stdout, "fleet schema up to date (version %d)\n", fleet.SchemaVersion)
					return nil
				}
				parts := make([]string, len(applied))
				for i, v := range applied {
					parts[i] = fmt.Sprint(v)
				}
				fmt.Fprintf(e.stdout, "fleet schema migrated to version %d (applied %s)\n", fleet.SchemaVersion, strings.Join(parts, ", "))
				return nil
			},
		}},
	}
}
