// Package lockgroup takes a lock group's exclusive flock(2) lock on
// LOCK_DIR/NAME.lock. The file belongs to tickgate (mode 0600, in a
// directory no job's user can write), so a job's user can neither open it
// to starve a group, nor remove or replace it to break mutual exclusion.
//
// Only the helper holds the lock, on a descriptor of its own, for the whole
// run. The job's command gets no descriptor of it: a descriptor can be
// passed out of the unit (SCM_RIGHTS to any process of the job's uid) and
// would hold the group, and every deploy's drain, hostage long after the run.
//
// What a descriptor in the job used to give — the group stays busy while
// processes of a run live on after their helper was SIGKILLed — comes from
// the holder record instead: the holder writes into the lock file itself
// who holds it (its job, its pid, its unit's cgroup, the command's process
// group) once the command has started, and empties it when it lets go with
// nothing of the run left. A record the next holder finds non-empty was left
// by a holder that died without letting go, or that left processes behind:
// the group counts as busy while they live — under systemd while the old
// holder's unit cgroup is populated, otherwise while the run's process group
// has members — and is free once they are gone.
//
// gofrs/flock keeps its descriptor private and cannot open without following
// links, so this package uses flock(2) directly.
package lockgroup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/proc"
	"github.com/tickgate/tickgate/helper/safefs"
)

// ErrBusy means another run holds the lock group (errors.Is; the error
// itself says who, when known).
var ErrBusy = errors.New("lock busy")

// BusyError is ErrBusy with what holds the group.
type BusyError struct {
	Group  string
	Detail string
}

func (e *BusyError) Error() string        { return e.Detail }
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Detail says what holds group, for a lock-busy reason.
func Detail(err error, group string) string {
	var be *BusyError
	if errors.As(err, &be) {
		return be.Detail
	}
	return fmt.Sprintf("lock group %s is held by another run", group)
}

// PollInterval is how often a waiting Acquire retries.
const PollInterval = 50 * time.Millisecond

// Path returns the lock file for a group (its first slot's).
func Path(dir, name string) string { return filepath.Join(dir, name+".lock") }

// SlotSep joins a group's name and a slot's number in the slot's lock file
// name (NAME#1.lock): a character no lock group name has, so a slot file is
// never another group's.
const SlotSep = "#"

// MaxSlots bounds a group's size.
const MaxSlots = 64

// SlotName names slot i of group name, on a host (its lock file, plus
// ".lock") and in the fleet (its lease): slot 0 is the group's own name (a
// group of one is what it always was), slot i>0 NAME#i.
func SlotName(name string, i int) string {
	if i == 0 {
		return name
	}
	return fmt.Sprintf("%s%s%d", name, SlotSep, i)
}

// slotFile is the lock file of slot i of group name.
func slotFile(name string, i int) string { return SlotName(name, i) + ".lock" }

// GroupOf is the group a lock file (without .lock) belongs to.
func GroupOf(file string) string {
	g, _, _ := strings.Cut(file, SlotSep)
	return g
}

// maxRecord caps what is read of a holder record.
const maxRecord = 4096

// Record is what a holder writes into the lock file while it holds it.
type Record struct {
	Job         string `json:"job"`
	Helper      int    `json:"helper_pid"`
	HelperStart uint64 `json:"helper_start,omitempty"`
	PGID        int    `json:"pgid,omitempty"`   // the command's process group
	Cgroup      string `json:"cgroup,omitempty"` // the holder's cgroup (v2 path), its unit's under systemd
	LeftBehind  bool   `json:"left_behind,omitempty"`
}

// Group is a held lock group (one of its slots).
type Group struct {
	name   string
	slot   int
	lock   *os.File
	wrote  bool // the record is not empty
	keep   bool // let go with processes left behind: keep the record
	record Record
	// lastLeft says which processes of an earlier run made the last try
	// fail ("" when another holder had the lock).
	lastLeft string
}

// Close lets go of the lock: the record is emptied first, unless the run
// left processes behind (LeftBehind), which keep the group busy.
func (g *Group) Close() {
	if g.wrote && !g.keep {
		_ = g.lock.Truncate(0)
	}
	g.lock.Close()
}

// Started records that the command runs in process group pgid, for job.
func (g *Group) Started(job string, pgid int) {
	self := os.Getpid()
	g.record = Record{Job: job, Helper: self, HelperStart: proc.StartTime(self), PGID: pgid, Cgroup: OwnCgroup()}
	g.write()
}

// LeftBehind says that the run's command ended but processes it started
// still run: the record stays when the lock is let go, so the next holder
// waits for them.
func (g *Group) LeftBehind() {
	if !g.wrote {
		return
	}
	g.keep = true
	g.record.LeftBehind = true
	g.write()
}

func (g *Group) write() {
	data, _ := json.Marshal(g.record)
	data = append(data, '\n')
	f := g.lock
	// One write at offset 0, then a truncate to its length: a holder killed
	// in between leaves the new record followed by the old one's tail,
	// which parseRecord passes over.
	if _, err := f.WriteAt(data, 0); err == nil {
		_ = f.Truncate(int64(len(data)))
		g.wrote = true
	}
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

// Acquire takes the group's lock. With wait 0 it fails at once with
// ErrBusy; otherwise it retries until wait has passed or ctx is done. A lock
// whose last holder left processes that still run counts as busy.
func Acquire(ctx context.Context, dir, name string, wait time.Duration, owners *safefs.Owners) (*Group, error) {
	return AcquireSlot(ctx, dir, name, 1, wait, owners)
}

// AcquireSlot takes one of the group's slots (a group that admits slots
// runs at once): the first free one, in order; with a wait, whichever
// frees first. Each slot is a lock file of its own, with its own holder
// record.
func AcquireSlot(ctx context.Context, dir, name string, slots int, wait time.Duration, owners *safefs.Owners) (*Group, error) {
	if slots < 1 || slots > MaxSlots {
		return nil, fmt.Errorf("lock group %s: %d slots is not within 1-%d", name, slots, MaxSlots)
	}
	d, err := OpenDir(dir, owners)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	gs := make([]*Group, slots)
	closeAll := func(except *Group) {
		for _, g := range gs {
			if g != nil && g != except {
				g.lock.Close()
			}
		}
	}
	for i := range gs {
		g := &Group{name: name, slot: i}
		if g.lock, err = d.OpenLockRW(slotFile(name, i), 0o600, owners); err != nil {
			closeAll(nil)
			return nil, fmt.Errorf("lock group %s: %w", name, err)
		}
		gs[i] = g
	}
	deadline := time.Now().Add(wait)
	for {
		for _, g := range gs {
			ok, err := g.try()
			switch {
			case err != nil:
				closeAll(nil)
				return nil, err
			case ok:
				closeAll(g)
				return g, nil
			}
		}
		if wait <= 0 || !time.Now().Before(deadline) {
			closeAll(nil)
			return nil, busy(name, gs)
		}
		select {
		case <-ctx.Done():
			closeAll(nil)
			return nil, ctx.Err()
		case <-time.After(min(PollInterval, time.Until(deadline))):
		}
	}
}

// Slot is which of its group's slots g holds (0 for a group of one).
func (g *Group) Slot() int { return g.slot }

// try takes the lock, and keeps it unless the record left in it names
// processes that still run.
func (g *Group) try() (bool, error) {
	ok, err := safefs.TryFlock(g.lock)
	if !ok || err != nil {
		return false, err
	}
	if left, what := g.leftover(); left {
		_ = unix.Flock(int(g.lock.Fd()), unix.LOCK_UN)
		g.lastLeft = what
		return false, nil
	}
	return true, nil
}

// busy is the error for a group none of whose slots gs could be taken.
func busy(name string, gs []*Group) error {
	var left []string
	for _, g := range gs {
		if g.lastLeft != "" {
			left = append(left, g.lastLeft)
		}
	}
	switch {
	case len(gs) == 1 && len(left) == 1:
		return &BusyError{Group: name, Detail: fmt.Sprintf("lock group %s: %s", name, left[0])}
	case len(gs) == 1:
		return ErrBusy
	case len(left) > 0:
		return &BusyError{Group: name, Detail: fmt.Sprintf("lock group %s: all %d slots are held (%s)", name, len(gs), strings.Join(left, "; "))}
	}
	return &BusyError{Group: name, Detail: fmt.Sprintf("lock group %s: all %d slots are held by other runs", name, len(gs))}
}

// leftover reads the record in the (locked) file: whether processes of an
// earlier run still hold the group, and which.
func (g *Group) leftover() (bool, string) {
	var buf [maxRecord]byte
	n, _ := g.lock.ReadAt(buf[:], 0)
	if n == 0 {
		return false, ""
	}
	r, ok := parseRecord(buf[:n])
	if !ok {
		// Not a record tickgate wrote whole: nothing to wait for (only the
		// supervisor and root can write the file).
		_ = g.lock.Truncate(0)
		return false, ""
	}
	if alive, what := r.Alive(); alive {
		return true, what
	}
	// Stale: nothing of that run is left. The new holder's record will
	// replace it; empty it now in case this holder starts nothing.
	_ = g.lock.Truncate(0)
	return false, ""
}

// parseRecord reads the first JSON value of b: what follows it is the end of
// a longer record a holder killed between its write and its truncate left.
func parseRecord(b []byte) (Record, bool) {
	var r Record
	if json.NewDecoder(bytes.NewReader(b)).Decode(&r) != nil || r.Helper <= 0 {
		return r, false
	}
	return r, true
}

// Alive says whether processes of the run r records still live, and which:
// under systemd, those of its unit's cgroup, whatever they did to their
// process groups; otherwise (or for this process' own unit, which systemd
// started only once the processes of its previous run were gone) those of
// the command's process group.
func (r Record) Alive() (bool, string) {
	who := fmt.Sprintf("job %s's run (helper pid %d)", r.Job, r.Helper)
	if r.Cgroup != "" && r.Cgroup != "/" {
		own := OwnCgroup()
		if r.Cgroup != own {
			if Populated(r.Cgroup) {
				return true, "processes of " + who + " still run in " + r.Cgroup
			}
			return false, ""
		}
		if os.Getenv("INVOCATION_ID") != "" {
			return false, ""
		}
	}
	if proc.GroupAlive(r.PGID) {
		return true, fmt.Sprintf("processes of %s still run (process group %d)", who, r.PGID)
	}
	return false, ""
}

// ReadRecord reads group's record from the lock file path without taking
// the lock (drain, status): ok is false when there is none.
func ReadRecord(d *safefs.Dir, file string) (Record, bool) {
	data, err := d.ReadFile(file, maxRecord)
	if err != nil || len(data) == 0 {
		return Record{}, false
	}
	return parseRecord(data)
}

// OwnCgroup is this process' cgroup (v2) path, "" when unknown.
func OwnCgroup() string {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

// CgroupRoots are where the cgroup v2 hierarchy may be mounted: on its own
// (systemd's unified mode), or beside the v1 controllers (hybrid mode).
var CgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}

// cgroupRoot is the first of CgroupRoots that is a cgroup v2 mount.
func cgroupRoot() string {
	for _, r := range CgroupRoots {
		if _, err := os.Stat(filepath.Join(r, "cgroup.controllers")); err == nil {
			return r
		}
	}
	return CgroupRoots[0]
}

// Populated says whether the cgroup (v2 path) has any process in it or
// below it; false when it is gone.
func Populated(cg string) bool {
	if strings.Contains(cg, "..") {
		return false
	}
	data, err := os.ReadFile(filepath.Join(cgroupRoot(), cg, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(data, []byte("populated 1"))
}
