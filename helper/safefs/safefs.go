// Package safefs opens, reads, writes and locks files inside one directory
// without following a link, blocking on a FIFO or device, or reading without
// bound, and judges whether a directory may be trusted at all.
//
// Every operation is relative to an open directory descriptor (openat and
// friends), so a path component cannot be swapped for a symlink between a
// check and a use. tickgate's decisions rest on these files; see docs/security.md
// "Security model".
package safefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrUntrusted is matched (errors.Is) by every refusal of a file or
// directory another user could write to.
var ErrUntrusted = errors.New("not trusted")

// untrusted is a refusal whose message says why without repeating "not
// trusted".
type untrusted struct{ msg string }

func (u *untrusted) Error() string        { return u.msg }
func (u *untrusted) Is(target error) bool { return target == ErrUntrusted }

func distrust(format string, a ...any) error { return &untrusted{fmt.Sprintf(format, a...)} }

// ErrTooLarge is wrapped when a file exceeds the read cap.
var ErrTooLarge = errors.New("larger than the read cap")

// ErrNotRegular is wrapped when a name is a FIFO, device, socket or directory
// where a regular file belongs.
var ErrNotRegular = errors.New("not a regular file")

// Owners is who may own a trusted directory and the lock files tickgate
// uses: root, the helper's own effective uid, and the supervisor account
// named Supervisor (looked up only when a file's owner is neither of the
// first two, so a tick running as that account never reads /etc/passwd).
type Owners struct {
	Supervisor string
	once       sync.Once
	uid        int
}

// NewOwners trusts root, the effective uid and the named supervisor account.
func NewOwners(supervisor string) *Owners { return &Owners{Supervisor: supervisor} }

func (o *Owners) ok(uid uint32) bool {
	if uid == 0 || int(uid) == os.Geteuid() {
		return true
	}
	if o == nil || o.Supervisor == "" {
		return false
	}
	o.once.Do(func() {
		o.uid = -1
		if u, err := user.Lookup(o.Supervisor); err == nil {
			if n, err := strconv.Atoi(u.Uid); err == nil {
				o.uid = n
			}
		} else if n, err := strconv.ParseUint(o.Supervisor, 10, 31); err == nil {
			o.uid = int(n) // a bare uid
		}
	})
	return o.uid >= 0 && int(uid) == o.uid
}

// Dir is an open directory. Close it when done.
type Dir struct {
	fd   int
	path string
	st   unix.Stat_t
}

// Path is the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// UID and GID are the directory's owner.
func (d *Dir) UID() int { return int(d.st.Uid) }
func (d *Dir) GID() int { return int(d.st.Gid) }

// Close closes the descriptor.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

const dirFlags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC

// OpenRoot opens a configured directory (its path may contain links an
// administrator made; only what is inside is opened without following).
// With create, a missing directory is made with perm.
func OpenRoot(path string, create bool, perm os.FileMode) (*Dir, error) {
	if path == "" {
		return nil, errors.New("empty directory path")
	}
	if create {
		if err := os.MkdirAll(path, perm); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Open(path, dirFlags, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return newDir(fd, path)
}

func newDir(fd int, path string) (*Dir, error) {
	d := &Dir{fd: fd, path: path}
	if err := unix.Fstat(fd, &d.st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	return d, nil
}

// Sub opens the directory name inside d without following a link. With
// create, a missing one is made with perm (and given d's owner when root
// makes it).
func (d *Dir) Sub(name string, create bool, perm os.FileMode) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	path := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd, name, dirFlags|unix.O_NOFOLLOW, 0)
	if errors.Is(err, unix.ENOENT) && create {
		if err = unix.Mkdirat(d.fd, name, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, &fs.PathError{Op: "mkdir", Path: path, Err: err}
		}
		fd, err = unix.Openat(d.fd, name, dirFlags|unix.O_NOFOLLOW, 0)
		if err == nil {
			if cerr := d.giveOwner(fd); cerr != nil {
				unix.Close(fd)
				return nil, &fs.PathError{Op: "chown", Path: path, Err: cerr}
			}
			_ = unix.Fchmod(fd, uint32(perm.Perm())) // umask may have narrowed it
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: explain(err)}
	}
	return newDir(fd, path)
}

// giveOwner hands a file root created in d to d's owner, so that the
// supervisor account (which owns tickgate's directories) can use it later.
func (d *Dir) giveOwner(fd int) error {
	if os.Geteuid() != 0 || d.st.Uid == 0 {
		return nil
	}
	return unix.Fchown(fd, int(d.st.Uid), int(d.st.Gid))
}

// Trusted fails unless d is owned by one of owners and no one else can write
// to it (group or other write bits). Only a directory that passes may hold
// facts a privileged tick or operator acts on.
func (d *Dir) Trusted(o *Owners) error {
	if !o.ok(d.st.Uid) {
		return distrust("directory %s is owned by uid %d, which may be a job's user (tickgate trusts only root and its supervisor account; redeploy, or chown it)", d.path, d.st.Uid)
	}
	if d.st.Mode&0o022 != 0 {
		return distrust("directory %s has mode %04o: writable by group or others (want 0755 or stricter)", d.path, d.st.Mode&0o7777)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("invalid file name %q", name)
	}
	return nil
}

// explain turns the errno of an O_NOFOLLOW open of a link into words.
func explain(err error) error {
	if errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("is a symbolic link (not followed): %w", err)
	}
	if errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("is not a directory: %w", err)
	}
	return err
}

// openFile opens name for reading without following a link or blocking, and
// checks it is a regular file.
func (d *Dir) openFile(name string, extra int, perm uint32) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(name); err != nil {
		return nil, st, err
	}
	path := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|extra, perm)
	if err != nil {
		return nil, st, &fs.PathError{Op: "open", Path: path, Err: explain(err)}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, st, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, st, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, typeName(st.Mode))}
	}
	return os.NewFile(uintptr(fd), path), st, nil
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("type %o", mode&unix.S_IFMT)
}

// ReadFile reads the regular file name, at most max bytes. A missing file is
// an error that satisfies errors.Is(err, fs.ErrNotExist).
func (d *Dir) ReadFile(name string, max int64) ([]byte, error) {
	f, st, err := d.openFile(name, 0, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, st.Size, max)
}

// Exists reports whether name exists (as anything; links are not followed).
func (d *Dir) Exists(name string) (bool, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &fs.PathError{Op: "stat", Path: filepath.Join(d.path, name), Err: err}
	}
	return true, nil
}

// TempPrefix is how every temp file this package makes for name begins.
func TempPrefix(name string) string { return "." + name + ".tmp-" }

// HeldTemp is the temp file of the *Held writes for name: one fixed name,
// so a SIGKILLed writer's leftover is found by the next write of name
// without listing the directory.
func HeldTemp(name string) string { return TempPrefix(name) + "held" }

// WriteAtomic replaces name with data (mode perm): a new temp file (O_EXCL,
// never a link), fsync, rename over name, fsync the directory. A reader sees
// the old or the new content, never a torn file. Root's files are given the
// directory's owner. The temp file's name is random: writers of name need
// not be serialised, and CleanTemps removes what a SIGKILLed one left.
func (d *Dir) WriteAtomic(name string, data []byte, perm os.FileMode) error {
	return d.WriteAtomicAs(name, data, perm, -1, -1)
}

// WriteAtomicAs is WriteAtomic giving the new file owner uid:gid when this
// process may (root); -1 means the directory's owner.
func (d *Dir) WriteAtomicAs(name string, data []byte, perm os.FileMode, uid, gid int) error {
	return d.replace(name, data, perm, uid, gid, true, false)
}

// WriteAtomicHeld is WriteAtomic for a caller holding the lock that
// serialises every writer of name. Its temp file is HeldTemp(name): what a
// SIGKILLed writer left there is removed first, so the directory is never
// listed (a shared directory of 1000 jobs' files would be, at every write).
// Without that lock two writers could remove each other's temp file and one
// could publish the other's half-written one: use it only under the lock.
func (d *Dir) WriteAtomicHeld(name string, data []byte, perm os.FileMode) error {
	return d.replace(name, data, perm, -1, -1, true, true)
}

// WriteReplace is WriteAtomic without the two fsyncs, for derived data that
// is rebuilt anyway (the metrics files): a reader still sees the old or the
// new content, never a torn file, but after a power loss the file may be
// empty or old until its next write.
func (d *Dir) WriteReplace(name string, data []byte, perm os.FileMode) error {
	return d.replace(name, data, perm, -1, -1, false, false)
}

// WriteReplaceHeld is WriteReplace with WriteAtomicHeld's fixed temp file.
func (d *Dir) WriteReplaceHeld(name string, data []byte, perm os.FileMode) error {
	return d.replace(name, data, perm, -1, -1, false, true)
}

func (d *Dir) replace(name string, data []byte, perm os.FileMode, uid, gid int, durable, held bool) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	var tmp string
	var fd int
	if held {
		// unlinkat removes a link, never what it points to.
		tmp = HeldTemp(name)
		if err = unix.Unlinkat(d.fd, tmp, 0); err == nil || errors.Is(err, unix.ENOENT) {
			fd, err = unix.Openat(d.fd, tmp, flags, uint32(perm.Perm()))
		}
	} else {
		for i := 0; ; i++ {
			tmp = TempPrefix(name) + randHex()
			fd, err = unix.Openat(d.fd, tmp, flags, uint32(perm.Perm()))
			if err == nil || !errors.Is(err, unix.EEXIST) || i > 8 {
				break
			}
		}
	}
	if err != nil {
		return &fs.PathError{Op: "create", Path: filepath.Join(d.path, tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
	defer func() {
		if err != nil {
			_ = unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if _, err = f.Write(data); err == nil {
		err = f.Chmod(perm.Perm())
	}
	if err == nil && uid >= 0 && os.Geteuid() == 0 {
		err = unix.Fchown(fd, uid, gid)
	} else if err == nil {
		err = d.giveOwner(fd)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err = unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		return &fs.PathError{Op: "rename", Path: filepath.Join(d.path, name), Err: err}
	}
	if !durable {
		return nil
	}
	return d.Sync()
}

// Sync fsyncs the directory, making renames and unlinks in it durable.
func (d *Dir) Sync() error {
	if err := unix.Fsync(d.fd); err != nil {
		return &fs.PathError{Op: "fsync", Path: d.path, Err: err}
	}
	return nil
}

// Remove removes name (missing is fine) durably; it reports whether a file
// was removed. A directory is not removed.
func (d *Dir) Remove(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	err := unix.Unlinkat(d.fd, name, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, &fs.PathError{Op: "remove", Path: filepath.Join(d.path, name), Err: err}
	}
	return true, d.Sync()
}

// CleanTemps removes temp files of WriteAtomic for each of names older than
// age: the leftovers of a writer SIGKILLed between create and rename. It
// reads the directory once. Call it while holding the lock that serialises
// writers of those names.
func (d *Dir) CleanTemps(age time.Duration, names ...string) {
	f, err := unix.Openat(d.fd, ".", dirFlags, 0)
	if err != nil {
		return
	}
	dir := os.NewFile(uintptr(f), d.path)
	defer dir.Close()
	entries, _ := dir.Readdirnames(-1)
	cutoff := time.Now().Add(-age)
	for _, n := range entries {
		if !strings.HasPrefix(n, ".") || !isTempOf(n, names) {
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(d.fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		if time.Unix(st.Mtim.Unix()).Before(cutoff) {
			_ = unix.Unlinkat(d.fd, n, 0)
		}
	}
}

func isTempOf(entry string, names []string) bool {
	for _, name := range names {
		if strings.HasPrefix(entry, TempPrefix(name)) {
			return true
		}
	}
	return false
}

// OpenLock opens (creating with perm) the lock file name: never a link, never
// blocking, a regular file owned by a trusted owner. Root's new lock files
// are given the directory's owner.
func (d *Dir) OpenLock(name string, perm os.FileMode, o *Owners) (*os.File, error) {
	return d.openLock(name, perm, o, 0)
}

// OpenLockRW is OpenLock, opened for writing too: its holder may write in it
// (a lock group's holder record).
func (d *Dir) OpenLockRW(name string, perm os.FileMode, o *Owners) (*os.File, error) {
	return d.openLock(name, perm, o, unix.O_RDWR)
}

func (d *Dir) openLock(name string, perm os.FileMode, o *Owners, extra int) (*os.File, error) {
	f, st, err := d.openFile(name, unix.O_CREAT|extra, uint32(perm.Perm()))
	if err != nil {
		return nil, err
	}
	if st.Uid == 0 && d.st.Uid != 0 {
		if err := d.giveOwner(int(f.Fd())); err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "chown", Path: f.Name(), Err: err}
		}
		st.Uid = d.st.Uid
	}
	if !o.ok(st.Uid) {
		f.Close()
		return nil, distrust("lock file %s is owned by uid %d, not by tickgate", f.Name(), st.Uid)
	}
	return f, nil
}

// Flock takes an exclusive flock on f, retrying every poll until ctx ends.
// It never blocks in the kernel, so a signal or deadline always ends it.
func Flock(ctx context.Context, f *os.File, poll time.Duration) error {
	for {
		if ok, err := TryFlock(f); ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(poll):
		}
	}
}

// TryFlock takes an exclusive flock on f if it is free: false (and no
// error) when another holds it.
func TryFlock(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR):
		return false, nil
	}
	return false, &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
}

// Names lists the entries of d (unsorted).
func (d *Dir) Names() ([]string, error) {
	f, err := unix.Openat(d.fd, ".", dirFlags, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.path, Err: err}
	}
	dir := os.NewFile(uintptr(f), d.path)
	defer dir.Close()
	return dir.Readdirnames(-1)
}

// Lstat is name's stat, not following a link.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &fs.PathError{Op: "lstat", Path: filepath.Join(d.path, name), Err: err}
	}
	return st, nil
}

// IsDir reports whether name is a directory (a link to one is not).
func (d *Dir) IsDir(name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// randHex makes temp names unique (O_EXCL makes them safe): math/rand/v2,
// not crypto/rand, whose first read costs 40-100 µs per process.
func randHex() string {
	return fmt.Sprintf("%012x", rand.Uint64()>>16)
}

// Rename renames from to to inside d (neither is followed) and fsyncs d.
func (d *Dir) Rename(from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, from, d.fd, to); err != nil {
		return &fs.PathError{Op: "rename", Path: filepath.Join(d.path, from), Err: err}
	}
	return d.Sync()
}

// ReadOwned is ReadFile for a file whose content is trusted as configuration:
// it must also belong to one of owners and (with strictMode) not be writable
// by group or others. It returns the file's owner and mode too.
func (d *Dir) ReadOwned(name string, max int64, o *Owners, strictMode bool) ([]byte, FileInfo, error) {
	f, st, err := d.openFile(name, 0, 0)
	if err != nil {
		return nil, FileInfo{}, err
	}
	defer f.Close()
	fi := FileInfo{UID: int(st.Uid), GID: int(st.Gid), Mode: os.FileMode(st.Mode & 0o777)}
	if !o.ok(st.Uid) {
		return nil, fi, distrust("owned by uid %d (want root or uid %d)", st.Uid, os.Geteuid())
	}
	if strictMode && st.Mode&0o022 != 0 {
		return nil, fi, distrust("mode %04o is writable by group or others (want 0644 or stricter)", st.Mode&0o7777)
	}
	data, err := readCapped(f, st.Size, max)
	return data, fi, err
}

// FileInfo is a file's owner and permission bits.
type FileInfo struct {
	UID, GID int
	Mode     os.FileMode
}

func readCapped(f *os.File, size, limit int64) ([]byte, error) {
	// One buffer of the size the file had when opened (one more byte, to
	// see it grow), not io.ReadAll's doubling: a state.json is read in one
	// read(2), not ten.
	buf := make([]byte, 0, min(limit, max(size, 0))+1)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, &fs.PathError{Op: "read", Path: f.Name(), Err: fmt.Errorf("%w of %d bytes", ErrTooLarge, limit)}
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: f.Name(), Err: err}
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)] // grew since opened: room for more
		}
	}
}
