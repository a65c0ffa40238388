// Package lockgroup takes a lock group's exclusive flock(2) lock on
// LOCK_DIR/NAME.lock.
//
// The lock is held through an *os.File that the runner passes to the child
// (as flock(1) does): the lock lives on the open file description, so if the
// helper is SIGKILLed while its child runs, the child still holds the lock and
// no other run of the group can start until it exits. gofrs/flock keeps its
// descriptor private, so it cannot hand the lock to a child; this package uses
// flock(2) directly for that one lock.
package lockgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy means another process holds the lock group.
var ErrBusy = errors.New("lock busy")

// PollInterval is how often a waiting Acquire retries.
const PollInterval = 50 * time.Millisecond

// Path returns the lock file for a group.
func Path(dir, name string) string { return filepath.Join(dir, name+".lock") }

// Acquire opens (creating dir and file if needed) and locks the group's lock
// file. With wait 0 it fails at once with ErrBusy; otherwise it retries until
// wait has passed or ctx is done.
func Acquire(ctx context.Context, dir, name string, wait time.Duration) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	path := Path(dir, name)
	// 0664 so members of the tickgate group can share locks across job users.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o664)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		if wait <= 0 || !time.Now().Before(deadline) {
			f.Close()
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(min(PollInterval, time.Until(deadline))):
		}
	}
}
