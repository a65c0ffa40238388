package sysprog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Only root's programs, writable by no one else, in the system's own
// directories; never a name with a path; never PATH.
func TestFind(t *testing.T) {
	p, err := Find("systemd-analyze")
	if err != nil || !filepath.IsAbs(p) {
		t.Fatalf("Find(systemd-analyze) = %q, %v", p, err)
	}
	for _, bad := range []string{"", ".", "..", "../bin/sh", "/bin/sh", "sub/dir"} {
		if _, err := Find(bad); err == nil {
			t.Errorf("Find(%q): no error", bad)
		}
	}
	dir := t.TempDir()
	old := Dirs
	defer func() { Dirs = old }()
	Dirs = []string{dir}
	prog := filepath.Join(dir, "prog")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(prog, 0o775); err != nil {
		t.Fatal(err)
	}
	if _, err := Find("prog"); err == nil || !strings.Contains(err.Error(), "writable by group or others") && !strings.Contains(err.Error(), "is not root's") {
		t.Fatalf("a group-writable (or not root's) program: %v", err)
	}
	t.Setenv("PATH", dir)
	Dirs = old
	if _, err := Find("prog"); err == nil || !strings.Contains(err.Error(), "not found in") {
		t.Fatalf("a program only in PATH: %v", err)
	}
}

// The program gets Env and nothing of the caller's environment.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("LD_PRELOAD", "/nonexistent.so")
	t.Setenv("TZ", "Etc/GMT-14")
	cmd, err := Command(context.Background(), "env")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != strings.Join(Env, " ") {
		t.Fatalf("env = %q, want %q", got, Env)
	}
}
