package safefs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func openTestDir(t testing.TB) (*Dir, string) {
	t.Helper()
	path := t.TempDir()
	d, err := OpenRoot(path, false, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func names(t *testing.T, path string) []string {
	t.Helper()
	entries, err := os.ReadDir(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// The *Held writes go through one fixed temp name: a leftover of a
// SIGKILLed writer (even a link a job planted there) is removed, never
// followed, and nothing but the file itself is left behind.
func TestWriteHeld(t *testing.T) {
	for _, tc := range []struct {
		name     string
		leftover func(t *testing.T, dir, tmp string)
	}{
		{"no leftover", func(*testing.T, string, string) {}},
		{"a SIGKILLed writer's temp file", func(t *testing.T, dir, tmp string) {
			if err := os.WriteFile(filepath.Join(dir, tmp), []byte(`{"half`), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link at the temp name", func(t *testing.T, dir, tmp string) {
			if err := os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, tmp)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory at the temp name", func(t *testing.T, dir, tmp string) {
			if err := os.Mkdir(filepath.Join(dir, tmp), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		for _, durable := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/durable=%v", tc.name, durable), func(t *testing.T) {
				d, dir := openTestDir(t)
				if err := os.WriteFile(filepath.Join(dir, "target"), []byte("untouched"), 0o600); err != nil {
					t.Fatal(err)
				}
				tc.leftover(t, dir, HeldTemp("state.json"))
				write := d.WriteReplaceHeld
				if durable {
					write = d.WriteAtomicHeld
				}
				err := write("state.json", []byte("new\n"), 0o644)
				if tc.name == "a directory at the temp name" {
					// Not something a writer leaves: refused, and named.
					if err == nil || !strings.Contains(err.Error(), HeldTemp("state.json")) {
						t.Fatalf("err = %v, want one naming %s", err, HeldTemp("state.json"))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, "state.json")); string(got) != "new\n" {
					t.Errorf("state.json = %q", got)
				}
				if got, _ := os.ReadFile(filepath.Join(dir, "target")); string(got) != "untouched" {
					t.Errorf("the link's target = %q: it was followed", got)
				}
				fi, err := os.Lstat(filepath.Join(dir, "state.json"))
				if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
					t.Errorf("state.json: %v, %v", fi.Mode(), err)
				}
				if got, want := names(t, dir), []string{"state.json", "target"}; !slices.Equal(got, want) {
					t.Errorf("directory holds %q, want %q", got, want)
				}
			})
		}
	}
}

// A write that fails after creating its temp file removes it.
func TestWriteHeldFailureLeavesNothing(t *testing.T) {
	d, dir := openTestDir(t)
	if err := os.Mkdir(filepath.Join(dir, "state.json"), 0o755); err != nil {
		t.Fatal(err) // rename over a directory fails
	}
	if err := d.WriteAtomicHeld("state.json", []byte("x"), 0o644); err == nil {
		t.Fatal("rename over a directory succeeded")
	}
	if got, want := names(t, dir), []string{"state.json"}; !slices.Equal(got, want) {
		t.Errorf("directory holds %q, want %q", got, want)
	}
}

// BenchmarkReplaceBeside1000 is a tick's metrics write in the directory
// every job's file shares, with 1000 jobs' files in it: the way before
// (list the directory for a SIGKILLed writer's temp files, then write through
// a random temp name) against the fixed temp name of WriteReplaceHeld.
func BenchmarkReplaceBeside1000(b *testing.B) {
	d, dir := openTestDir(b)
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tickgate_job%d.prom", i)), []byte("x\n"), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 3500)
	b.Run("listed", func(b *testing.B) {
		for b.Loop() {
			d.CleanTemps(0, "tickgate_bench.prom")
			if err := d.WriteReplace("tickgate_bench.prom", data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("held", func(b *testing.B) {
		for b.Loop() {
			if err := d.WriteReplaceHeld("tickgate_bench.prom", data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	})
}
