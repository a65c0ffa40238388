package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/runner"
)

// FullHelper is the full helper's name, looked for beside tickgate-tick.
const FullHelper = "tickgate"

// unknownCommand is the error for a command this program does not have;
// runOnly says it has run alone (tickgate-tick).
func unknownCommand(name string, runOnly bool) error {
	if runOnly {
		return exitcode.UsageError("%s runs jobs only (tickgate-tick run JOB -- COMMAND); %q and the other operator commands are tickgate's", filepath.Base(os.Args[0]), name)
	}
	return exitcode.UsageError("unknown command %q (see tickgate --help)", name)
}

// HandOffToFull is tickgate-tick's Wiring.HandOff: it replaces this process
// with the full helper, given the same arguments and environment, when the
// tick needs what this build leaves out: fleet coordination (--fleet,
// --lock-scope fleet, --singleton fleet) or the job's notification targets
// (NOTIFY_DIR/JOB.json, or anything there that is not plainly absent: the
// full helper checks and reports it). It returns only if the tick is to run
// here (nil) or the full helper cannot be started. Nothing has been locked,
// read or written yet. The full helper is found beside this program
// (/proc/self/exe), never through PATH.
func HandOffToFull(cfg runner.Config, args []string) error {
	var need string
	switch {
	case cfg.Fleet != nil:
		need = "fleet coordination"
	case cfg.NotifyDir != "":
		if _, err := os.Lstat(filepath.Join(cfg.NotifyDir, cfg.Job+".json")); !errors.Is(err, fs.ErrNotExist) {
			need = "notifications"
		}
	}
	if need == "" {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return exitcode.New(exitcode.Software, "job %s: %s is the full helper's, and this program cannot tell where it is itself: %v", cfg.Job, need, err)
	}
	full := filepath.Join(filepath.Dir(self), FullHelper)
	argv := append([]string{full}, args[1:]...)
	err = syscall.Exec(full, argv, os.Environ())
	return exitcode.New(exitcode.Software, "job %s: %s is the full helper's (%s beside %s), which cannot be started: %v", cfg.Job, need, FullHelper, self, err)
}
