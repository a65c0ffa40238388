package lockgroup

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tickgate/tickgate/helper/safefs"
)

// Holder is a lock group that a run holds right now.
type Holder struct {
	Name string // lock group
	PID  int    // the helper that holds the lock, or the process group of a run's leftovers
	// Job and Left are set for a group whose lock is free but whose last
	// holder left processes that still run (its helper was killed, or its
	// command left processes behind): Left says which.
	Job  string
	Left string
}

type fileID struct {
	major, minor uint32
	ino          uint64
}

// Held lists the lock groups in dir that a run holds: those whose lock is
// held (/proc/locks), and those whose holder record names processes that
// still run. It takes no lock itself, so it never makes a starting job
// skip. A record it cannot read (status run by a user other than the
// supervisor or root) is passed over.
func Held(dir string) ([]Holder, error) {
	d, err := safefs.OpenRoot(dir, false, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		return nil, err
	}
	byID := map[fileID]string{}
	type recordedFile struct {
		name string
		id   fileID
	}
	var recorded []recordedFile // lock files with a holder record
	for _, n := range names {
		file, ok := strings.CutSuffix(n, ".lock")
		if !ok || strings.HasPrefix(n, ".") {
			continue
		}
		group := GroupOf(file) // a slot's file (NAME#1.lock) is its group's
		st, err := d.Lstat(n)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		id := fileID{unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino}
		byID[id] = group
		if st.Size > 0 {
			recorded = append(recorded, recordedFile{n, id})
		}
	}
	if len(byID) == 0 {
		return nil, nil
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Holder
	seen := map[fileID]bool{} // lock files held now (a group of N slots has N)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "3: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters carry "->".
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[1] == "->" || fields[1] != "FLOCK" {
			continue
		}
		id, ok := parseID(fields[5])
		if !ok {
			continue
		}
		name, ok := byID[id]
		if !ok || seen[id] {
			continue
		}
		pid, _ := strconv.Atoi(fields[4])
		seen[id] = true
		out = append(out, Holder{Name: name, PID: pid})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/locks: %w", err)
	}
	for _, f := range recorded {
		if seen[f.id] {
			continue
		}
		group := byID[f.id]
		r, ok := ReadRecord(d, f.name)
		if !ok {
			continue
		}
		if alive, what := r.Alive(); alive {
			out = append(out, Holder{Name: group, PID: r.PGID, Job: r.Job, Left: what})
		}
	}
	return out, nil
}

// parseID parses "fd:01:5678" (hex major:minor, decimal inode).
func parseID(s string) (fileID, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return fileID{}, false
	}
	maj, err1 := strconv.ParseUint(parts[0], 16, 32)
	mnr, err2 := strconv.ParseUint(parts[1], 16, 32)
	ino, err3 := strconv.ParseUint(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fileID{}, false
	}
	return fileID{uint32(maj), uint32(mnr), ino}, true
}
