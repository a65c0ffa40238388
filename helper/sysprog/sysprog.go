// Package sysprog runs the system's programs tickgate needs
// (systemd-analyze, journalctl, systemctl): found at an absolute path in the
// system's own directories, never through PATH; run with a fixed, minimal
// environment, never the helper's; and, for a supervisor that holds
// capabilities, only after its ambient set is cleared, so that no program
// tickgate did not write runs with them.
//
// The helper's own environment is its unit's (a job's variables never reach
// it: package jobenv), but a hand-written unit, a shell or a test may give
// it anything: PATH, LD_PRELOAD, TZ, GCONV_PATH and the like change nothing
// here.
package sysprog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Dirs are where system programs are looked for, in order.
var Dirs = []string{"/usr/bin", "/bin", "/usr/sbin", "/sbin"}

// Env is every system program's whole environment: C locale (its output is
// parsed), no pager, no colours, no TZ (a calendar is read in the host's
// zone, /etc/localtime, as systemd's timers read it).
var Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "SYSTEMD_LESS=", "PAGER=cat"}

// BeforeRun is called before every program starts (the runner clears the
// supervisor's ambient capabilities with it); nil: nothing to do.
var BeforeRun func() error

// Find returns the absolute path of program name in Dirs: a regular file
// owned by root and writable by no one else (a file anyone else could have
// changed is not the system's).
func Find(name string) (string, error) {
	if filepath.Base(name) != name || name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("%q is not a program name", name)
	}
	var why []string
	for _, d := range Dirs {
		p := filepath.Join(d, name)
		fi, err := os.Stat(p) // /bin may be a link to /usr/bin
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		switch {
		case !fi.Mode().IsRegular():
			why = append(why, p+" is not a regular file")
		case !ok || st.Uid != 0:
			why = append(why, p+" is not root's")
		case fi.Mode().Perm()&0o022 != 0:
			why = append(why, p+" is writable by group or others")
		case fi.Mode().Perm()&0o111 == 0:
			why = append(why, p+" is not executable")
		default:
			return p, nil
		}
	}
	if len(why) > 0 {
		return "", fmt.Errorf("%s: no usable copy (%v)", name, why)
	}
	return "", fmt.Errorf("%s: not found in %v", name, Dirs)
}

// Command is exec.CommandContext for the system program name, found by
// Find and given Env. The returned error says why name cannot run.
func Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	p, err := Find(name)
	if err != nil {
		return nil, err
	}
	if BeforeRun != nil {
		if err := BeforeRun(); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = Env
	cmd.Dir = "/"
	return cmd, nil
}
