// Command tickgate-gendocs writes tickgate's man pages (from the CLI's own
// definition) into a directory: make dist's step, not an installed program.
//
//	tickgate-gendocs -version 0.5.0 -date 2026-12-06 DIR
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/commands"
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/manpage"
)

func main() {
	version := flag.String("version", cli.Version, "the version the pages name")
	date := flag.String("date", time.Now().UTC().Format("2006-01-02"), "the date the pages carry (YYYY-MM-DD)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "tickgate-gendocs: give the output DIR")
		os.Exit(exitcode.Usage)
	}
	if err := run(flag.Arg(0), manpage.Meta{Version: *version, Date: *date, ExitStatus: exitStatus}); err != nil {
		fmt.Fprintf(os.Stderr, "tickgate-gendocs: %v\n", err)
		os.Exit(exitcode.Software)
	}
}

var exitStatus = map[int]string{
	exitcode.OK:       "the command succeeded; for run, the job ran and its code was an ok or done code",
	exitcode.Failure:  "an operator command failed (a drain timed out, a fence is stale, a check said no)",
	exitcode.Usage:    "bad flags, arguments or input (EX_USAGE)",
	exitcode.Software: "tickgate could not do its own part: state unwritable, a database unreachable (EX_SOFTWARE)",
	exitcode.Skipped:  "run: the job was skipped on purpose (marker, gate, rollout window, lock busy; EX_TEMPFAIL)",
	exitcode.GateBad:  "run: the gate file is unusable under --gate-fail closed (EX_CONFIG)",
}

func run(dir string, m manpage.Meta) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, text := range manpage.Pages(cli.App(cli.Wiring{Commands: commands.All}), m) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}
