// Package lockgroup takes a lock group's exclusive flock(2) lock on
// LOCK_DIR/NAME.lock, and its pin LOCK_DIR/NAME.pin.
//
// Both files belong to tickgate (mode 0600, in a directory no job's user can
// write), so a job's user can neither open them to starve a group, nor
// remove or replace them to break mutual exclusion.
//
// The helper holds NAME.lock for the whole run on a descriptor of its own.
// The child gets NAME.pin on fd 3 (as flock(1) passes its lock): if the
// helper is SIGKILLed while its child runs, the child still holds the pin,
// and the next run of the group, which needs both, skips until it exits. The
// child can release only its pin, never the lock its supervisor holds.
// gofrs/flock keeps its descriptor private and cannot hand a lock to a child
// or open without following links, so this package uses flock(2) directly.
package lockgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tickgate/tickgate/helper/safefs"
)

// ErrBusy means another process holds the lock group.
var ErrBusy = errors.New("lock busy")

// PollInterval is how often a waiting Acquire retries.
const PollInterval = 50 * time.Millisecond

// Path returns the lock file for a group.
func Path(dir, name string) string { return filepath.Join(dir, name+".lock") }

// Group is a held lock group.
type Group struct {
	lock, pin *os.File
}

// Pin is the descriptor to hand to the child (fd 3).
func (g *Group) Pin() *os.File { return g.pin }

// Close releases both locks (the child may still hold the pin).
func (g *Group) Close() {
	g.pin.Close()
	g.lock.Close()
}

// OpenDir opens the lock dir (creating it if missing) and checks that no
// job's user can write to it.
func OpenDir(dir string, owners *safefs.Owners) (*safefs.Dir, error) {
	d, err := safefs.OpenRoot(dir, true, 0o755)
	if err != nil {
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	if err := d.Trusted(owners); err != nil {
		d.Close()
		return nil, fmt.Errorf("lock dir: %w", err)
	}
	return d, nil
}

// Acquire takes the group's lock and pin. With wait 0 it fails at once with
// ErrBusy; otherwise it retries until wait has passed or ctx is done.
func Acquire(ctx context.Context, dir, name string, wait time.Duration, owners *safefs.Owners) (*Group, error) {
	d, err := OpenDir(dir, owners)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	g := &Group{}
	if g.lock, err = d.OpenLock(name+".lock", 0o600, owners); err != nil {
		return nil, fmt.Errorf("lock group %s: %w", name, err)
	}
	if g.pin, err = d.OpenLock(name+".pin", 0o600, owners); err != nil {
		g.lock.Close()
		return nil, fmt.Errorf("lock group %s: %w", name, err)
	}
	deadline := time.Now().Add(wait)
	for {
		if ok, err := g.try(); ok || err != nil {
			if err != nil {
				g.Close()
			}
			return g, err
		}
		if wait <= 0 || !time.Now().Before(deadline) {
			g.Close()
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			g.Close()
			return nil, ctx.Err()
		case <-time.After(min(PollInterval, time.Until(deadline))):
		}
	}
}

// try takes the lock, then the pin; it keeps neither unless it gets both.
func (g *Group) try() (bool, error) {
	ok, err := safefs.TryFlock(g.lock)
	if !ok || err != nil {
		return false, err
	}
	if ok, err = safefs.TryFlock(g.pin); !ok || err != nil {
		unlock(g.lock)
		return false, err
	}
	return true, nil
}
