// Package fsutil writes files atomically: a temp file in the same directory,
// fsync, rename over the target, fsync the directory. A reader sees either the
// old or the new content, never a torn file, even after SIGKILL or power loss.
package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
)

// Owner is a uid/gid pair to give the new file; -1 keeps the process' own.
type Owner struct{ UID, GID int }

// NoOwner leaves the file owned by the writing process.
var NoOwner = Owner{-1, -1}

// WriteAtomic replaces path with data, mode perm and the given owner.
func WriteAtomic(path string, data []byte, perm os.FileMode, owner Owner) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Chmod(perm); err != nil {
		_ = tmp.Close()
		return err
	}
	if owner.UID >= 0 || owner.GID >= 0 {
		if err = tmp.Chown(owner.UID, owner.GID); err != nil {
			_ = tmp.Close()
			return err
		}
	}
	if err = tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a rename or unlink in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// RemoveDurably removes path (missing is fine) and fsyncs its directory.
// It reports whether a file was removed.
func RemoveDurably(path string) (bool, error) {
	err := os.Remove(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, SyncDir(filepath.Dir(path))
}
