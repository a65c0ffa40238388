package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A lock group of N slots (--lock-slots): jobs started at once never run
// more than N at a time; without a wait the rest skip lock-busy naming the
// slots; with --lock-wait every one runs, waiting for any slot.
func TestLockGroupSlots(t *testing.T) {
	e := newEnv(t)
	running := filepath.Join(e.dir, "running")
	if err := os.Mkdir(running, 0o755); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(e.dir, "seen")
	// Each run marks itself running, records how many are, stays a while.
	body := `touch "$0/$$"; ls "$0" | wc -l >> "$1"; sleep 0.6; rm "$0/$$"`
	start := func(n int, extra ...string) ([]*exec.Cmd, []bytes.Buffer) {
		cmds := make([]*exec.Cmd, n)
		errs := make([]bytes.Buffer, n)
		for i := range cmds {
			args := append([]string{"run", "--lock", "api", "--lock-slots", "2"}, extra...)
			args = append(args, fmt.Sprintf("job%d", i), "--", "sh", "-c", body, running, seen)
			cmds[i] = e.cmd(args...)
			cmds[i].Stderr = &errs[i]
		}
		for _, c := range cmds {
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
		}
		return cmds, errs
	}
	maxSeen := func() int {
		data, _ := os.ReadFile(seen)
		m := 0
		for _, f := range strings.Fields(string(data)) {
			if n, _ := strconv.Atoi(f); n > m {
				m = n
			}
		}
		return m
	}

	// 5 at once, no wait: 2 run, 3 skip.
	cmds, errs := start(5)
	ran := 0
	for i, c := range cmds {
		switch code := exitCode(c.Wait()); code {
		case 0:
			ran++
		case 75:
			if !strings.Contains(errs[i].String(), `reason="lock-busy: lock group api: all 2 slots are held by other runs"`) {
				t.Errorf("skip %d: %s", i, errs[i].String())
			}
		default:
			t.Errorf("run %d exited %d: %s", i, code, errs[i].String())
		}
	}
	if ran != 2 || maxSeen() != 2 {
		t.Fatalf("no wait: %d ran, at most %d at once; want 2 and 2", ran, maxSeen())
	}

	// 5 at once, each waiting up to 10 s for any slot: all run, never more than 2 at once.
	os.Remove(seen)
	cmds, errs = start(5, "--lock-wait", "10s")
	for i, c := range cmds {
		if code := exitCode(c.Wait()); code != 0 {
			t.Errorf("run %d exited %d: %s", i, code, errs[i].String())
		}
	}
	data, _ := os.ReadFile(seen)
	if n := len(strings.Fields(string(data))); n != 5 || maxSeen() != 2 {
		t.Fatalf("with a wait: %d ran, at most %d at once; want 5 and 2", n, maxSeen())
	}

	// drain and status count every holder of the group.
	c, _ := e.startRun("held1", "--lock", "api", "--lock-slots", "2", "held1", "--", "sleep", "30")
	c2, _ := e.startRun("held2", "--lock", "api", "--lock-slots", "2", "held2", "--", "sleep", "30")
	defer func() {
		for _, p := range []*exec.Cmd{c, c2} {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	}()
	r := e.mustCode(1, "drain", "--timeout", "200ms")
	if !strings.Contains(r.stderr+r.stdout, "held1") || !strings.Contains(r.stderr+r.stdout, "held2") {
		t.Fatalf("drain does not name both holders: %s %s", r.stdout, r.stderr)
	}
	r = e.mustCode(0, "status", "--no-systemd")
	if !strings.Contains(r.stdout, "lock groups: api 2/2 held (held1 pid ") {
		t.Fatalf("status does not show the group's holders:\n%s", r.stdout)
	}
	// A group of one is still NAME.lock; slots are NAME#i.lock.
	for _, f := range []string{"api.lock", "api#1.lock"} {
		if _, err := os.Stat(filepath.Join(e.lockDir, f)); err != nil {
			t.Errorf("lock file %s: %v", f, err)
		}
	}
}
