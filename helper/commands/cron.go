package commands

import (
	"errors"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/cronimport"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/voice"
)

const cronImportHelp = `Reads crontabs and run-parts directories and prints the tickgate jobs that
replace them, as YAML with one key, tickgate_jobs, ready for group_vars or
host_vars (each job under a comment naming the line it came from).

A file is a user crontab (crontab -l format) of --user, or in system format
(a user column) when it is /etc/crontab, lies in a cron.d directory, or
--system is given. A directory is a run-parts directory (cron.daily, …): a
job per program in it, all in one lock group, on the schedule of the
anacrontab or crontab line that runs it (beside it, or given), else its
name's.

Schedules fire exactly when cron's would: cron's day-of-month OR day-of-week
rule becomes two OnCalendar expressions; CRON_TZ (or TZ) becomes the zone;
each is checked with systemd-analyze calendar. flock, run-one, chronic,
timeout, nice, ionice and "cd DIR &&" in front of a command become lock,
lock_wait, timeout, nice, io_class and working_directory; jobs that held one
lock file share a lock group. A command runs through the crontab's SHELL only
when it needs a shell.

Exit status: 0 when every entry converted, 1 when some did not (each is
named on stderr with file:line and why; the rest are printed), 64 on a usage
error.

Examples:
  tickgate cron import /etc/crontab /etc/cron.d /etc/cron.daily
  crontab -l -u harvest > harvest.cron; tickgate cron import --user harvest harvest.cron`

func cronCommand(e *cli.Env) *ucli.Command {
	return &ucli.Command{
		Name:  "cron",
		Usage: "move cron entries to tickgate",
		Subcommands: []*ucli.Command{{
			Name:        "import",
			Usage:       "print the tickgate jobs that replace crontab lines and run-parts directories",
			UsageText:   "tickgate cron import [--user USER] [--system] PATH...",
			Description: cronImportHelp,
			Flags: []ucli.Flag{
				&ucli.StringFlag{Name: "user", Value: "root", Usage: "a file read as a user crontab is `USER`'s"},
				&ucli.BoolFlag{Name: "system", Usage: "read every file in system format (minute hour dom month dow USER command)"},
			},
			Action: func(c *ucli.Context) error {
				paths := c.Args().Slice()
				if len(paths) == 0 {
					return exitcode.UsageError("cron import: no PATH given (a crontab, /etc/cron.d, a run-parts directory)")
				}
				var files []string
				for _, p := range paths {
					more, err := cronimport.Expand(p)
					if err != nil {
						return exitcode.UsageError("cron import: %v", err)
					}
					files = append(files, more...)
				}
				res, err := cronimport.Import(files, cronimport.Options{User: c.String("user"), System: c.Bool("system")})
				if errors.Is(err, cronimport.ErrUsage) {
					return exitcode.UsageError("cron import: %v", errors.Unwrap(err))
				}
				if err != nil {
					return exitcode.New(exitcode.Software, "cron import: %v", err)
				}
				res.Check(c.Context)
				if res.Unchecked != "" {
					voice.Warn(e.Stderr, "cron import: schedules not checked (%s); the deploy's preflight checks them on each host", res.Unchecked)
				}
				res.WriteYAML(e.Stdout)
				for _, p := range res.Problems {
					voice.Say(e.Stderr, "cron import: not converted: %s", p)
				}
				if len(res.Problems) > 0 {
					return exitcode.New(exitcode.Failure, "cron import: converted %d of %d entries", len(res.Jobs), res.Entries)
				}
				voice.Say(e.Stderr, "cron import: converted %d of %d entries", len(res.Jobs), res.Entries)
				return nil
			},
		}},
	}
}
