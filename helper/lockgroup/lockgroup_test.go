package lockgroup

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

func TestAcquireBusyAndRelease(t *testing.T) {
	dir := t.TempDir() + "/locks"
	ctx := context.Background()
	f, err := Acquire(ctx, dir, "g", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(ctx, dir, "g", 0, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Acquire = %v, want ErrBusy", err)
	}
	other, err := Acquire(ctx, dir, "other", 0, nil)
	if err != nil {
		t.Fatalf("different group blocked: %v", err)
	}
	other.Close()

	// A waiter gets the lock once the holder closes its descriptor.
	go func() { time.Sleep(150 * time.Millisecond); f.Close() }()
	g, err := Acquire(ctx, dir, "g", 5*time.Second, nil)
	if err != nil {
		t.Fatalf("waiting Acquire = %v", err)
	}
	g.Close()
}

func TestAcquireWaitTimesOut(t *testing.T) {
	dir := t.TempDir()
	f, err := Acquire(context.Background(), dir, "g", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if _, err := Acquire(context.Background(), dir, "g", 120*time.Millisecond, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("returned before the wait elapsed")
	}
}

func TestAcquireCancelled(t *testing.T) {
	dir := t.TempDir()
	f, _ := Acquire(context.Background(), dir, "g", 0, nil)
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Acquire(ctx, dir, "g", time.Hour, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestHeldReadsProcLocks(t *testing.T) {
	dir := t.TempDir()
	if h, err := Held(dir); err != nil || len(h) != 0 {
		t.Fatalf("empty dir: %v %v", h, err)
	}
	a, err := Acquire(context.Background(), dir, "a", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Acquire(context.Background(), dir, "b", 0, nil)
	b.Close() // b's file exists but is free
	h, err := Held(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].Name != "a" || h[0].PID != os.Getpid() {
		t.Fatalf("Held = %+v, want only a held by pid %d", h, os.Getpid())
	}
	// Held must not take the lock: a try-lock after it still fails for a.
	if _, err := Acquire(context.Background(), dir, "a", 0, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("a not busy after Held: %v", err)
	}
	a.Close()
	if h, _ := Held(dir); len(h) != 0 {
		t.Fatalf("after release: %+v", h)
	}
}
