// Command minitick is a benchmark reference (BenchmarkRunVsFlock): the file
// work a tick must do, done straight-line by one goroutine, on depsonly's
// start-up (tickgate-tick's libraries linked, signal handling on). It is not
// a tickgate: no checks of ownership or modes, no errors handled beyond
// stopping, no CLI. Its time is what tickgate-tick's own code (its CLI, its
// goroutines, its checks) is measured against:
//
//	minitick STATE_ROOT LOCK_DIR GATE_FILE NOTIFY_DIR DATA_ROOT METRICS_DIR JOB COMMAND [ARG...]
//
// The syscalls are the tick's on its plain path (strace of tickgate-tick
// run JOB -- true): the notification targets' stat, the markers, gate and
// backoff files after the lock group and its pin are taken, the control
// socket, the command's start and reaping, state.json read and replaced
// under the state lock (temp, fsync, rename, fsync dir), the metrics file
// (temp, rename; empty METRICS_DIR: none) and one line on stderr. Keep it
// in step: a syscall tickgate-tick's plain path gains belongs here too, or
// the benchmark's "tickgate-tick above that" flatters the tick.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "github.com/coreos/go-systemd/v22/journal"
	_ "github.com/urfave/cli/v2"
)

// run is one entry of state.json's history, as tickgate writes it.
type run struct {
	RunID      string     `json:"run_id"`
	Result     string     `json:"result"`
	Reason     string     `json:"reason"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Duration   float64    `json:"duration_seconds"`
	ExitCode   int        `json:"exit_code"`
}

// state is state.json's head as tickgate writes it; the history stays raw
// but for the new run.
type state struct {
	Job           string            `json:"job"`
	Lock          string            `json:"lock"`
	run                             // the latest tick's fields, at the top level
	LastSuccessAt *time.Time        `json:"last_success_at"`
	Failures      int               `json:"consecutive_failures"`
	PID           int               `json:"pid"`
	LastRun       *run              `json:"last_run"`
	LastSkip      *run              `json:"last_skip"`
	RunsTotal     int               `json:"runs_total"`
	FailuresTotal int               `json:"failures_total"`
	SkipsTotal    int               `json:"skips_total"`
	RetriesTotal  int               `json:"retries_total"`
	UpdatedAt     time.Time         `json:"updated_at"`
	History       []json.RawMessage `json:"history"`
}

func main() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	if err := tick(os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5], os.Args[6], os.Args[7], os.Args[8:]); err != nil {
		fmt.Fprintf(os.Stderr, "minitick: %v\n", err)
		os.Exit(70)
	}
}

// atFDCWD is AT_FDCWD (syscall does not export it on linux/amd64).
const atFDCWD = -100

func absent(dirfd int, name string) error {
	fd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == nil {
		syscall.Close(fd)
		return fmt.Errorf("%s is there", name)
	}
	return nil
}

func locked(dirfd int, name string) error {
	fd, err := syscall.Openat(dirfd, name, syscall.O_RDONLY|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
}

func tick(stateRoot, lockDir, gateFile, notifyDir, dataRoot, metricsDir, job string, argv []string) error {
	started := time.Now()
	var st syscall.Stat_t
	if syscall.Lstat(filepath.Join(notifyDir, job+".json"), &st) == nil {
		return fmt.Errorf("%s has notification targets", job)
	}
	jd, err := syscall.Open(filepath.Join(stateRoot, job), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ld, err := syscall.Open(lockDir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := locked(ld, job+".lock"); err != nil {
		return err
	}
	if err := locked(ld, job+".pin"); err != nil {
		return err
	}
	for _, err := range []error{absent(jd, "done"), absent(jd, "halted"), absent(ld, job+".backoff"), absent(atFDCWD, gateFile)} {
		if err != nil {
			return err
		}
	}
	ctl, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := syscall.Stat(filepath.Join(dataRoot, job), &st); err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	env := append(os.Environ(), "TICKGATE_JOB="+job, "TICKGATE_CONTROL_FD=4")
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2, uintptr(ld), uintptr(ctl[1])}, Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		return err
	}
	syscall.Close(ctl[1])
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	finished := time.Now()

	if err := locked(jd, ".state.lock"); err != nil {
		return err
	}
	f := os.NewFile(uintptr(mustOpenat(jd, "state.json", syscall.O_RDONLY)), "state.json")
	raw := make([]byte, 64<<10)
	n, _ := f.Read(raw)
	f.Close()
	var s state
	if err := json.Unmarshal(raw[:n], &s); err != nil {
		return err
	}
	r := run{RunID: strconv.FormatInt(started.UnixNano(), 16), Result: "success", StartedAt: &started, FinishedAt: &finished,
		Duration: finished.Sub(started).Seconds(), ExitCode: ws.ExitStatus()}
	s.run = r
	s.LastSuccessAt, s.LastRun, s.RunsTotal, s.UpdatedAt = &finished, &r, s.RunsTotal+1, time.Now()
	entry, _ := json.Marshal(r)
	if s.History = append(s.History, entry); len(s.History) > 50 {
		s.History = s.History[len(s.History)-50:]
	}
	out, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := mustOpenat(jd, ".state.json.tmp", syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC)
	if _, err := syscall.Write(tmp, out); err != nil {
		return err
	}
	if err := syscall.Fsync(tmp); err != nil {
		return err
	}
	syscall.Close(tmp)
	if err := syscall.Renameat(jd, ".state.json.tmp", jd, "state.json"); err != nil {
		return err
	}
	if err := syscall.Fsync(jd); err != nil {
		return err
	}
	if metricsDir != "" {
		b := make([]byte, 0, 4096)
		for i := 0; i < 24; i++ {
			b = fmt.Appendf(b, "# HELP tickgate_metric_%d one of the tick's series\n# TYPE tickgate_metric_%d gauge\ntickgate_metric_%d{job=%q} %d\n", i, i, i, job, s.RunsTotal)
		}
		name := filepath.Join(metricsDir, "tickgate_"+job+".prom")
		if err := os.WriteFile(name+".tmp", b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(name+".tmp", name); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "minitick: job=%s result=success exit=%d duration=%.3fs\n", job, r.ExitCode, r.Duration)
	return nil
}

func mustOpenat(dirfd int, name string, flags int) int {
	fd, err := syscall.Openat(dirfd, name, flags|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "minitick: %s: %v\n", name, err)
		os.Exit(70)
	}
	return fd
}
