// Package execshim is the last step between the supervisor and a job that
// runs as another user: `tickgate __exec -- ARGV...`, already running as the
// job's user, empties every capability set of its thread and execs ARGV.
//
// Why it exists: the supervisor account (not root) holds CAP_SETUID,
// CAP_SETGID and CAP_KILL. When a non-root process changes uid, the kernel
// keeps its permitted capabilities (only a change away from uid 0 clears
// them), so a child forked and setuid'ed by the supervisor would still hold
// them until its execve — and under NoNewPrivileges a binary with matching
// file capabilities would keep them. The supervisor clears its ambient set
// first (so this process starts with no capabilities at all, and cannot be
// ptraced into using any), and this shim drops what is left before the job's
// own program starts. docs/security.md.
//
// The shim is a process start between the supervisor and every non-root
// job's program, so it has its own small binary, Name (cmd/tickgate-exec),
// installed beside tickgate: it starts in about a third of the time the
// helper does, whose libraries' package initialisation alone costs as much
// (docs/design/tick-floor.md). Without it, tickgate runs itself as the shim.
package execshim

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Arg is the hidden first argument that selects the shim.
const Arg = "__exec"

// Name is the shim's own binary, looked for beside tickgate.
const Name = "tickgate-exec"

// Program returns the program to start as the shim (`PROGRAM __exec --
// ARGV...`) for the helper at self: Name in self's directory when it is a
// regular file (not a symbolic link) owned by root or by self's owner and
// writable by no one else, otherwise self. skipped says why a Name that is
// there was passed over (nil when it was used or is not installed).
func Program(self string) (path string, skipped error) {
	p := filepath.Join(filepath.Dir(self), Name)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return self, nil
	}
	if err != nil {
		return self, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() {
		return self, fmt.Errorf("%s is not a regular file (%v)", p, fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return self, fmt.Errorf("%s is writable by group or others (mode %v)", p, fi.Mode().Perm())
	}
	if st.Uid != 0 {
		var sf syscall.Stat_t
		if err := syscall.Stat(self, &sf); err != nil {
			return self, err
		}
		if st.Uid != sf.Uid {
			return self, fmt.Errorf("%s is owned by uid %d, not by root or by %s's owner", p, st.Uid, self)
		}
	}
	return p, nil
}

// Is reports whether args (os.Args) ask for the shim.
func Is(args []string) bool { return len(args) > 1 && args[1] == Arg }

// Main drops capabilities and execs the argv after "--" in args (os.Args).
// It returns only on failure, with the exit code to use: 127 when the
// program is not found, 126 when it cannot be run.
func Main(args []string) (int, error) {
	if len(args) < 4 || args[2] != "--" || args[3] == "" {
		return 126, errors.New("usage: tickgate __exec -- PROGRAM [ARG...] (internal)")
	}
	argv := args[3:]
	runtime.LockOSThread() // capabilities are per thread: exec from this one
	if err := DropAll(); err != nil {
		return 126, err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return codeOf(err), fmt.Errorf("cannot start %q: %v", argv[0], err)
	}
	err = syscall.Exec(path, argv, os.Environ())
	return codeOf(err), fmt.Errorf("cannot start %q: %v", argv[0], err)
}

// DropAll empties the calling thread's permitted, effective and inheritable
// capabilities (and so its ambient set).
func DropAll() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("dropping capabilities: %w", err)
	}
	return nil
}

// ClearAmbient clears the ambient capability set of every thread of this
// process, so children start without the supervisor's capabilities. It needs
// a build without cgo (the static helper is one).
func ClearAmbient() error {
	_, _, errno := syscall.AllThreadsSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("clearing ambient capabilities: %w", errno)
	}
	return nil
}

func codeOf(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return 127
	}
	return 126
}
