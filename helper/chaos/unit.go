//go:build chaos

package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cgroupRoot is where the suite makes its units' cgroups: cgroup v2,
// alone or beside v1 (the hybrid layout).
func cgroupRoot() (string, error) {
	for _, d := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "cgroup.kill")); err == nil || d == "/sys/fs/cgroup/unified" {
			return d, nil
		}
		var st syscall.Statfs_t
		if syscall.Statfs(d, &st) == nil && st.Type == 0x63677270 { // CGROUP2_SUPER_MAGIC
			return d, nil
		}
	}
	return "", errors.New("no cgroup v2 hierarchy (at /sys/fs/cgroup or /sys/fs/cgroup/unified)")
}

// Unit is what systemd makes of a tick's service, as far as the fleet's
// guarantees lean on it: the helper (the main process) and everything it
// starts in one cgroup; when the main process exits or is killed, the rest
// of the cgroup is killed (KillMode=mixed's last step, which systemd takes
// at once when no main process is left to stop); with a watchdog, a main
// process that fed it once and then stops feeding it for Watchdog has the
// whole cgroup SIGKILLed (WatchdogSignal=SIGKILL).
type Unit struct {
	Name     string
	Watchdog time.Duration
	cg       string
	cmd      *exec.Cmd
	sock     *net.UnixConn
	Stdout   bytes.Buffer
	Stderr   bytes.Buffer

	mu        sync.Mutex
	lastFeed  time.Time
	armed     bool
	frozen    bool
	Result    string    // "exited", "watchdog"
	ExitCode  int       // the main process's, -1 when killed by a signal
	MainEnded time.Time // when the main process exited
	Emptied   time.Time // when the cgroup had no process left
	done      chan struct{}
}

// StartUnit runs argv (env added to a clean environment) as a unit.
func (s *Suite) StartUnit(name string, argv, env []string, watchdog time.Duration) (*Unit, error) {
	u := &Unit{Name: name, Watchdog: watchdog, cg: filepath.Join(s.cgroups, name), done: make(chan struct{})}
	if err := os.Mkdir(u.cg, 0o755); err != nil {
		return nil, fmt.Errorf("unit %s: %w", name, err)
	}
	dir, err := os.Open(u.cg)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	notify := filepath.Join(s.Dir, "notify-"+name)
	_ = os.Remove(notify)
	u.sock, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	u.cmd = exec.Command(argv[0], argv[1:]...)
	u.cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET=" + notify}, env...)
	u.cmd.Stdout, u.cmd.Stderr = &u.Stdout, &u.Stderr
	u.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if err := u.cmd.Start(); err != nil {
		u.sock.Close()
		os.Remove(u.cg)
		return nil, fmt.Errorf("unit %s: %w", name, err)
	}
	go u.feed()
	go u.watch()
	return u, nil
}

// feed reads the notification socket: WATCHDOG=1 feeds the watchdog (and
// arms it, as systemd does for a service that never sent READY=1).
func (u *Unit) feed() {
	buf := make([]byte, 4096)
	for {
		n, err := u.sock.Read(buf)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "WATCHDOG=1" {
				u.mu.Lock()
				u.lastFeed, u.armed = time.Now(), true
				u.mu.Unlock()
			}
		}
	}
}

// watch waits for the main process, enforcing the watchdog meanwhile, then
// kills what is left of the cgroup and waits until it is empty.
func (u *Unit) watch() {
	defer close(u.done)
	exited := make(chan error, 1)
	go func() { exited <- u.cmd.Wait() }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	result := "exited"
wait:
	for {
		select {
		case <-exited:
			break wait
		case <-tick.C:
			u.mu.Lock()
			late := u.Watchdog > 0 && u.armed && !u.frozen && time.Since(u.lastFeed) > u.Watchdog
			u.mu.Unlock()
			if late {
				result = "watchdog"
				u.kill()
				<-exited
				break wait
			}
		}
	}
	ended := time.Now()
	u.kill()
	for !u.empty() {
		time.Sleep(5 * time.Millisecond)
	}
	u.mu.Lock()
	u.Result, u.MainEnded, u.Emptied = result, ended, time.Now()
	u.ExitCode = u.cmd.ProcessState.ExitCode()
	u.mu.Unlock()
	u.sock.Close()
	_ = os.Remove(u.sock.LocalAddr().String())
	_ = os.Remove(u.cg)
}

func (u *Unit) kill() { _ = os.WriteFile(filepath.Join(u.cg, "cgroup.kill"), []byte("1"), 0) }

func (u *Unit) empty() bool {
	b, err := os.ReadFile(filepath.Join(u.cg, "cgroup.events"))
	return err != nil || bytes.Contains(b, []byte("populated 0"))
}

// Wait waits until the unit is over (its cgroup empty).
func (u *Unit) Wait() { <-u.done }

// WaitTimeout is Wait with a bound: false when it is not over by then.
func (u *Unit) WaitTimeout(d time.Duration) bool {
	select {
	case <-u.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the main process.
func (u *Unit) Signal(sig syscall.Signal) error { return u.cmd.Process.Signal(sig) }

// Freeze stops every process of the unit at once, as a paused VM (whose
// systemd is paused too: the watchdog is not enforced while frozen, and
// starts afresh at Thaw).
func (u *Unit) Freeze(on bool) error {
	u.mu.Lock()
	u.frozen = on
	if !on {
		u.lastFeed = time.Now()
	}
	u.mu.Unlock()
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(filepath.Join(u.cg, "cgroup.freeze"), []byte(v), 0)
}

// Stop is systemctl stop: SIGTERM to the main process (KillMode=mixed),
// SIGKILL to the cgroup after grace.
func (u *Unit) Stop(grace time.Duration) {
	_ = u.Signal(syscall.SIGTERM)
	if !u.WaitTimeout(grace) {
		u.kill()
		u.Wait()
	}
}

// Exit is the main process's exit code, once Wait returned.
func (u *Unit) Exit() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ExitCode
}
