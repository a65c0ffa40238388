// Package admit answers one question for `tickgate run` and `tickgate gate
// check` alike: may this job start now? In order: its done and halted
// markers, then the gate (closed, job paused, rollout window), with the
// job's policy for a gate file that cannot be used.
package admit

import (
	"time"

	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/reason"
	"github.com/tickgate/tickgate/helper/state"
)

// Policy is what a job declared.
type Policy struct {
	ExpectedRuntime time.Duration // for the rollout window (0: ignore it)
	GateFailOpen    bool          // an unusable gate file lets the job run (with a warning)
}

// Decision is the answer. When not Allowed, Code is the exit code (75
// skipped, 78 gate unusable) and Reason says why; Warning is set when the
// job may run although the gate file is unusable.
type Decision struct {
	Allowed bool
	Code    int
	Reason  string
	Warning string
	// Gate is the gate file as read for this decision (nil: a marker
	// decided first, or the file was unusable).
	Gate *gate.Gate
}

// Check decides for the job named name (job is its open state dir, nil when
// it has none yet) with the gate file at gatePath at now.
func Check(name string, job *state.Job, gatePath string, now time.Time, p Policy) Decision {
	if job != nil {
		for _, name := range []string{state.MarkerDone, state.MarkerHalted} {
			// A marker that cannot be read still stops the job: its reason says why.
			if m, _ := job.ReadMarker(name); m != nil {
				return Decision{Code: exitcode.Skipped, Reason: reason.F(name, "%s", m.Reason)}
			}
		}
	}
	g, _, err := gate.Load(gatePath)
	if err != nil {
		if p.GateFailOpen {
			return Decision{Allowed: true, Warning: reason.F(reason.GateUnusable, "%v; running anyway (--gate-fail open)", err)}
		}
		return Decision{Code: exitcode.GateBad, Reason: reason.F(reason.GateUnusable, "%v", err)}
	}
	if d := g.Evaluate(name, now, p.ExpectedRuntime); !d.Allowed {
		return Decision{Code: exitcode.Skipped, Reason: d.Reason, Gate: g}
	}
	return Decision{Allowed: true, Gate: g}
}
