// Package proc answers "is this process still the one we started?" from
// /proc, without signals or locks, so readers never disturb running jobs.
package proc

import (
	"bytes"
	"os"
	"strconv"
)

// StartTime returns the start time of pid in clock ticks since boot (field 22
// of /proc/PID/stat), or 0 when the process does not exist.
func StartTime(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// comm (field 2) may contain spaces and parentheses: split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := bytes.Fields(b[i+1:])
	// After comm: field 3 (state) is fields[0], so field 22 is fields[19].
	if len(fields) < 20 {
		return 0
	}
	if string(fields[0]) == "Z" || string(fields[0]) == "X" {
		return 0 // a zombie has finished its work
	}
	st, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return 0
	}
	return st
}

// Alive reports whether pid runs and, when start is non-zero, is the same
// process that had that start time (guards against pid reuse).
func Alive(pid int, start uint64) bool {
	st := StartTime(pid)
	if st == 0 {
		return false
	}
	return start == 0 || st == start
}
