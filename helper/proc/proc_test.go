package proc

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestAlive(t *testing.T) {
	self := os.Getpid()
	st := StartTime(self)
	if st == 0 {
		t.Fatal("StartTime(self) = 0")
	}
	if !Alive(self, st) || !Alive(self, 0) {
		t.Fatal("self not alive")
	}
	if Alive(self, st+1) {
		t.Fatal("Alive ignored a different start time (pid reuse guard)")
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if Alive(cmd.Process.Pid, 0) {
		t.Fatal("reaped child reported alive")
	}
	if Alive(0, 0) || Alive(-1, 0) {
		t.Fatal("non-positive pid reported alive")
	}
}

func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	// Not reaped yet: wait until the kernel shows it as a zombie.
	zombie := false
	for i := 0; i < 2000 && !zombie; i++ {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		zombie = bytes.Contains(b, []byte(") Z "))
		time.Sleep(time.Millisecond)
	}
	if !zombie {
		t.Fatal("child never became a zombie")
	}
	if Alive(pid, 0) {
		t.Fatal("zombie reported alive")
	}
}

// A process group whose only member is a zombie (exited, not reaped: a
// container's init may never reap) is not alive; one with a live member is.
func TestGroupAlive(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	if !GroupAlive(pgid) {
		t.Fatal("a running group reported dead")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	// Not reaped: a zombie, which kill(-pgid, 0) still counts.
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pgid, 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Fatalf("premise: the zombie's group no longer answers kill: %v", err)
	}
	if GroupAlive(pgid) {
		t.Fatal("a group of one zombie reported alive")
	}
	_ = cmd.Wait()
	if GroupAlive(pgid) {
		t.Fatal("a gone group reported alive")
	}
	if GroupAlive(0) || GroupAlive(-1) {
		t.Fatal("no group reported alive")
	}
}
