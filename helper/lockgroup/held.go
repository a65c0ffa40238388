package lockgroup

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Holder is a lock group whose lock someone holds right now.
type Holder struct {
	Name string // lock group
	PID  int    // process that took the lock (it may have died since, leaving the lock to its child)
}

type fileID struct {
	major, minor uint32
	ino          uint64
}

// Held lists the lock groups in dir whose lock or pin is held, from
// /proc/locks (a held pin alone is the child of a SIGKILLed helper). It takes
// no lock itself, so it never makes a starting job skip.
func Held(dir string) ([]Holder, error) {
	byID := map[fileID]string{}
	for _, pattern := range []string{"*.lock", "*.pin"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			var st syscall.Stat_t
			if err := syscall.Lstat(m, &st); err != nil {
				continue
			}
			id := fileID{unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino}
			byID[id] = strings.TrimSuffix(strings.TrimSuffix(filepath.Base(m), ".lock"), ".pin")
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
	seen := map[string]bool{}
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
		if !ok || seen[name] {
			continue
		}
		pid, _ := strconv.Atoi(fields[4])
		seen[name] = true
		out = append(out, Holder{Name: name, PID: pid})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/locks: %w", err)
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
