package fence

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestAdmit(t *testing.T) {
	store := filepath.Join(t.TempDir(), "catalogue.fence")
	for _, c := range []struct {
		fence, prev int64
		stale       bool
	}{
		{5, 0, false},
		{5, 5, false}, // the same holder again
		{7, 5, false},
		{6, 7, true}, // an older holder, after a newer one wrote
		{1 << 32, 7, false},
		{8, 1 << 32, true}, // a holder from before a promotion
	} {
		prev, err := Admit(store, c.fence)
		if prev != c.prev || errors.Is(err, ErrStale) != c.stale || (err != nil && !c.stale) {
			t.Fatalf("Admit(%d) = %d, %v; want prev %d, stale %v", c.fence, prev, err, c.prev, c.stale)
		}
	}
	if h, err := Highest(store); err != nil || h != 1<<32 {
		t.Fatalf("Highest = %d, %v", h, err)
	}
	if _, err := Admit(store, 0); err == nil {
		t.Fatal("fence 0 admitted")
	}
}

func TestAdmitRefusesWhatIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "s")
	if err := os.WriteFile(store, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Admit(store, 3); err == nil || errors.Is(err, ErrStale) {
		t.Fatalf("a store holding garbage: %v", err)
	}
	if err := os.Remove(store); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "elsewhere"), store); err != nil {
		t.Fatal(err)
	}
	if _, err := Admit(store, 3); err == nil {
		t.Fatal("a symlinked store was followed")
	}
}

// Concurrent writers with different fences: the store ends at the highest,
// the highest was admitted, and every other either was admitted or refused
// as stale (never an error of the store itself).
func TestAdmitConcurrent(t *testing.T) {
	store := filepath.Join(t.TempDir(), "s")
	var mu sync.Mutex
	var admitted []int64
	var wg sync.WaitGroup
	for f := int64(1); f <= 40; f++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Admit(store, f); err == nil {
				mu.Lock()
				admitted = append(admitted, f)
				mu.Unlock()
			} else if !errors.Is(err, ErrStale) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if h, _ := Highest(store); h != 40 {
		t.Fatalf("highest %d", h)
	}
	found := false
	for _, f := range admitted {
		found = found || f == 40
	}
	if !found {
		t.Fatalf("40 not admitted: %v", admitted)
	}
}
