// Package proc answers "is this process still the one we started?" from
// /proc, without signals or locks, so readers never disturb running jobs.
package proc

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
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

// GroupAlive reports whether process group pgid has a member that is not a
// zombie. kill(-pgid, 0) answers for the group but counts a zombie (an
// exited process its parent has not reaped: a container's init may never
// reap); /proc then tells them apart. Processes /proc hides (another user's,
// under hidepid) count as alive.
func GroupAlive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	if err := syscall.Kill(-pgid, 0); err == syscall.ESRCH {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	want := strconv.Itoa(pgid)
	seen := false
	for _, e := range entries {
		if c := e.Name()[0]; c < '0' || c > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:]) // state, ppid, pgrp, ...
		if len(f) < 3 || string(f[2]) != want {
			continue
		}
		seen = true
		if s := string(f[0]); s != "Z" && s != "X" {
			return true
		}
	}
	// Members /proc showed were all zombies; none shown: hidden from us.
	return !seen
}
