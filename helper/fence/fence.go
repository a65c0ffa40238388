// Package fence is the resource's side of fencing: a store that remembers
// the highest fencing token a writer has shown and refuses a lower one.
//
// A fleet lock group's fence (TICKGATE_FENCE) grows with every holder. A
// holder that lost its lease — a pause longer than the lease, a partition —
// may still be about to write; only the resource can refuse that write,
// by comparing the writer's fence with the highest it has seen. Admit does
// this for a resource that lives in files: the store is one small file
// beside it, changed only under an exclusive lock and by atomic rename.
package fence

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrStale means a writer showed a fence lower than one the store has
// seen: a newer holder of the lock group exists, and this one must not
// write.
var ErrStale = errors.New("stale fence")

// Admit records fence in the store at path unless the store has seen a
// higher one (ErrStale, wrapped with both numbers). It returns the highest
// fence the store held before. The same fence is admitted again (one holder
// writes many times). The store's directory must exist; the store is
// created (0644) on first use, with a lock file beside it (path + ".lock").
func Admit(path string, fence int64) (prev int64, err error) {
	if fence <= 0 {
		return 0, fmt.Errorf("fence %d: a fence is a positive number (TICKGATE_FENCE of a fleet lock group's holder)", fence)
	}
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return 0, fmt.Errorf("fence store %s: %w", path, err)
	}
	defer lock.Close()
	for {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("fence store %s: locking: %w", path, err)
	}
	prev, err = read(path)
	if err != nil {
		return 0, err
	}
	if fence < prev {
		return prev, fmt.Errorf("%w: fence %d, but %s has seen %d (a newer holder of the lock group wrote)", ErrStale, fence, path, prev)
	}
	if fence == prev {
		return prev, nil
	}
	return prev, write(path, fence)
}

// Highest is the highest fence the store at path has seen (0: none).
func Highest(path string) (int64, error) { return read(path) }

func read(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("fence store %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("fence store %s: empty or unreadable (%v); remove it only if no writer can be stale", path, err)
	}
	v, perr := strconv.ParseInt(strings.TrimSpace(string(buf[:n])), 10, 64)
	if perr != nil || v <= 0 {
		return 0, fmt.Errorf("fence store %s: holds %q, not a fence; remove it only if no writer can be stale", path, strings.TrimSpace(string(buf[:n])))
	}
	return v, nil
}

// write replaces the store: a temporary file beside it, synced, renamed
// over it, and the directory synced, so a crash leaves the old fence or
// the new one, never neither.
func write(path string, fence int64) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("fence store %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", fence); err != nil {
		tmp.Close()
		return fmt.Errorf("fence store %s: %w", path, err)
	}
	err = tmp.Chmod(0o644)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("fence store %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fence store %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fence store %s: syncing its directory: %w", path, err)
	}
	return nil
}
