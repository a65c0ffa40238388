package lockgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
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

// The holder record: emptied when the holder lets go with nothing of its
// run left; kept, and the group busy, while processes it left live; stale
// (and replaced) once they are gone.
func TestHolderRecord(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	g, err := Acquire(ctx, dir, "g", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "30")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	g.Started("j", sleeper.Process.Pid)
	g.Close() // let go with nothing left behind (as far as it knows): emptied
	if fi, _ := os.Stat(Path(dir, "g")); fi.Size() != 0 {
		t.Fatalf("record left after a clean release: %d bytes", fi.Size())
	}
	g, err = Acquire(ctx, dir, "g", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.Started("j", sleeper.Process.Pid)
	g.LeftBehind()
	g.Close()
	_, err = Acquire(ctx, dir, "g", 0, nil)
	if !errors.Is(err, ErrBusy) || !strings.Contains(Detail(err, "g"), fmt.Sprintf("processes of job j's run (helper pid %d) still run (process group %d)", os.Getpid(), sleeper.Process.Pid)) {
		t.Fatalf("beside what the last run left: %v", err)
	}
	held, err := Held(dir)
	if err != nil || len(held) != 1 || held[0].Job != "j" || held[0].PID != sleeper.Process.Pid || held[0].Left == "" {
		t.Fatalf("Held = %+v, %v", held, err)
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	g, err = Acquire(ctx, dir, "g", 0, nil)
	if err != nil {
		t.Fatalf("after the leftover is gone: %v", err)
	}
	g.Close()
	if held, _ := Held(dir); len(held) != 0 {
		t.Fatalf("Held after: %+v", held)
	}
}

// A record followed by an older, longer record's tail (a holder killed
// between its write and its truncate) still reads; one that is not a
// record at all holds nothing.
func TestRecordTails(t *testing.T) {
	if r, ok := parseRecord([]byte(`{"job":"a","helper_pid":7,"pgid":9}` + "\n" + `ob":"longer-name","helper_pid":12345}`)); !ok || r.Job != "a" || r.PGID != 9 {
		t.Fatalf("a record with a tail: %+v %v", r, ok)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Path(dir, "g"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := Acquire(context.Background(), dir, "g", 0, nil)
	if err != nil {
		t.Fatalf("a lock file with garbage in it: %v", err)
	}
	g.Close()
}

// Populated reads cgroup.events of a cgroup v2 path, wherever the v2
// hierarchy is mounted.
func TestPopulated(t *testing.T) {
	root := t.TempDir()
	old := CgroupRoots
	defer func() { CgroupRoots = old }()
	CgroupRoots = []string{root + "/none", root}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(root+"/cgroup.controllers", nil, 0o644))
	must(os.MkdirAll(root+"/system.slice/a.service", 0o755))
	must(os.WriteFile(root+"/system.slice/a.service/cgroup.events", []byte("populated 1\nfrozen 0\n"), 0o644))
	must(os.MkdirAll(root+"/system.slice/b.service", 0o755))
	must(os.WriteFile(root+"/system.slice/b.service/cgroup.events", []byte("populated 0\nfrozen 0\n"), 0o644))
	if !Populated("/system.slice/a.service") || Populated("/system.slice/b.service") || Populated("/system.slice/gone.service") || Populated("/../etc") {
		t.Fatal("Populated")
	}
}
