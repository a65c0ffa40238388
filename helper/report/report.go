// Package report tells the world about a tick: one structured journald entry
// when stderr is connected to the journal (JOURNAL_STREAM), else one plain
// "tickgate: job=… result=… reason=…" line on stderr; and sd_notify STATUS=
// updates when NOTIFY_SOCKET is set.
package report

import (
	"fmt"
	"io"
	"strconv"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"

	"github.com/tickgate/tickgate/helper/textsafe"
	"github.com/tickgate/tickgate/helper/voice"
)

// Entry is one tick's outcome.
type Entry struct {
	Job, Lock, Result, Reason, RunID string
	ExitCode                         int
	DurationSec                      float64
	Attempt                          int // 0: the tick had no retries configured
}

// Reporter writes entries and warnings.
type Reporter struct {
	Stderr  io.Writer
	journal bool
}

// New detects whether stderr goes to journald.
func New(stderr io.Writer) *Reporter {
	ok, err := journal.StderrIsJournalStream()
	return &Reporter{Stderr: stderr, journal: ok && err == nil}
}

// Line is the plain form of an entry, also the journal MESSAGE.
func (e Entry) Line() string {
	s := fmt.Sprintf(voice.Prog+": job=%s result=%s exit=%d duration=%.3fs run_id=%s", e.Job, e.Result, e.ExitCode, e.DurationSec, e.RunID)
	if e.Lock != e.Job {
		s += " lock=" + e.Lock
	}
	if e.Attempt > 0 {
		s += " attempt=" + strconv.Itoa(e.Attempt)
	}
	if e.Reason != "" {
		s += " reason=" + strconv.Quote(e.Reason)
	}
	return s
}

func priority(result string) journal.Priority {
	switch result {
	case "failed", "interrupted", "retrying":
		return journal.PriWarning
	case "halted":
		return journal.PriErr
	default:
		return journal.PriInfo
	}
}

// Tick reports one tick.
func (r *Reporter) Tick(e Entry) {
	if r.journal {
		vars := map[string]string{
			"SYSLOG_IDENTIFIER":     "tickgate",
			"TICKGATE_JOB":          e.Job,
			"TICKGATE_LOCK":         e.Lock,
			"TICKGATE_RESULT":       e.Result,
			"TICKGATE_REASON":       textsafe.Clean(e.Reason),
			"TICKGATE_EXIT_CODE":    strconv.Itoa(e.ExitCode),
			"TICKGATE_DURATION_SEC": strconv.FormatFloat(e.DurationSec, 'f', 3, 64),
			"TICKGATE_RUN_ID":       e.RunID,
		}
		if e.Attempt > 0 {
			vars["TICKGATE_ATTEMPT"] = strconv.Itoa(e.Attempt)
		}
		if err := journal.Send(e.Line(), priority(e.Result), vars); err == nil {
			return
		}
	}
	fmt.Fprintln(r.Stderr, e.Line())
}

// Warn prints a warning line in the helper's voice.
func (r *Reporter) Warn(format string, a ...any) {
	msg := voice.Warning(format, a...)
	if r.journal {
		if err := journal.Send(msg, journal.PriWarning, map[string]string{"SYSLOG_IDENTIFIER": "tickgate"}); err == nil {
			return
		}
	}
	fmt.Fprintln(r.Stderr, msg)
}

// Watchdog feeds the unit's watchdog (WATCHDOG=1; nothing without
// NOTIFY_SOCKET): the units of fleet lock jobs set WatchdogSec=, and the
// helper feeds it while its lease is sure, so that systemd kills a frozen
// helper's unit before the lease can end.
func Watchdog() { _, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog) }

// Status sends STATUS= to the service manager when NOTIFY_SOCKET is set.
func Status(format string, a ...any) {
	_, _ = daemon.SdNotify(false, "STATUS="+textsafe.Clean(fmt.Sprintf(format, a...)))
}
