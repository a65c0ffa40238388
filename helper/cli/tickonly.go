//go:build tickonly

package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/runner"
)

// The tick-only build (`-tags tickonly`, installed as tickgate-tick beside
// tickgate) has `run` and nothing else: no operator command, so none of the
// libraries they need (D-Bus, PostgreSQL, HTTP) is linked or initialised.

// FullHelper is the full helper's name, looked for beside this program.
const FullHelper = "tickgate"

func opsCommands(*env) []*ucli.Command { return nil }

func unknownCommand(name string) error {
	return exitcode.UsageError("%s runs jobs only (tickgate-tick run JOB -- COMMAND); %q and the other operator commands are tickgate's", filepath.Base(os.Args[0]), name)
}

// handOff replaces this process with the full helper, given the same
// arguments and environment, when the tick needs what this build leaves out:
// fleet coordination (--fleet, --lock-scope fleet, --singleton fleet) or the
// job's notification targets (NOTIFY_DIR/JOB.json, or anything there that is
// not plainly absent: the full helper checks and reports it). It returns
// only if the tick is to run here (nil) or the full helper cannot be started.
// Nothing has been locked, read or written yet.
func handOff(cfg runner.Config, args []string) error {
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
