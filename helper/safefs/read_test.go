package safefs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// readCapped reads what the file holds, in one buffer sized from the open
// file, refuses more than the limit, and still reads a file that grew.
func TestReadCapped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, tc := range []struct {
		name        string
		content     []byte
		hint, limit int64
		tooLarge    bool
	}{
		{"empty", nil, 0, 10, false},
		{"exact size", bytes.Repeat([]byte("a"), 10), 10, 10, false},
		{"over the limit", bytes.Repeat([]byte("a"), 11), 11, 10, true},
		{"grew since opened", bytes.Repeat([]byte("b"), 5000), 100, 10000, false},
		{"grew past the limit", bytes.Repeat([]byte("c"), 5000), 100, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := readCapped(f, tc.hint, tc.limit)
			if tc.tooLarge {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err %v, want ErrTooLarge", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.content) {
				t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(tc.content))
			}
		})
	}
}
