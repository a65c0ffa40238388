//go:build tickonly

package runner

// The tick-only build (tickgate-tick, `-tags tickonly`) is the ExecStart of
// jobs that use neither fleet coordination nor notifications: it links no
// PostgreSQL driver and no HTTP client, whose package initialisation every
// process would pay. Its command line hands a tick that needs either to the
// full helper before the runner starts (cli.handOff), so these are never
// reached with a Config.Fleet or a job's targets; if they were, the fleet is
// unusable (the job's --gate-fail policy decides) and no one is notified.

import (
	"context"
	"errors"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/gate"
	"github.com/tickgate/tickgate/helper/state"
)

var errNoFleet = errors.New("this build of tickgate (tickgate-tick) has no fleet coordination; run the job with tickgate")

// links has nothing to link to here; its methods are the runner's (promoted).
type links struct{}

func (links) fleetOpen() bool                                  { return false }
func (links) closeFleet()                                      {}
func (links) fleetLockHeld() bool                              { return false }
func (links) fence() int64                                     { return 0 }
func (links) leaseEvents() <-chan leaseEvent                   { return nil }
func (links) fleetIdle()                                       {}
func (links) releaseFleetLock()                                {}
func (links) fleetExtendBackoff(backoff.B) (*backoff.B, error) { return nil, errNoFleet }
func (links) publish(*state.State)                             {}
func (links) loadNotify()                                      {}
func (links) notifyStart()                                     {}
func (links) notifyEnd()                                       {}
func (links) notePending(string, string, int, string)          {}

func (r *runner) fleetView() admit.Fleet                { return noFleet{} }
func (r *runner) takeFleetLock() (Outcome, bool, error) { return r.fleetUnusable(errNoFleet) }
func (r *runner) claimSlot() (Outcome, bool, error)     { return r.fleetUnusable(errNoFleet) }

// noFleet answers admission's fleet questions: there is no fleet here.
type noFleet struct{}

func (noFleet) Gate(context.Context) (*gate.Gate, error)            { return nil, errNoFleet }
func (noFleet) Backoff(context.Context, string) (*backoff.B, error) { return nil, errNoFleet }

// fenceReply: a tick-only helper never holds a fleet lock.
func (r *runner) fenceReply() ControlReply {
	return ControlReply{Error: "job " + r.c.Job + " holds no fleet lock (its lock_scope is not fleet)"}
}
