package runner

import (
	"context"
	"errors"
	"time"

	"github.com/tickgate/tickgate/helper/admit"
	"github.com/tickgate/tickgate/helper/backoff"
	"github.com/tickgate/tickgate/helper/notify"
	"github.com/tickgate/tickgate/helper/safefs"
)

// Deps is what a tick may reach beyond this host. The program's main wires
// it: tickgate gives both, tickgate-tick neither (its command line hands a
// tick that needs one to tickgate before the runner starts). A nil field
// means this build has none: a tick that needs the fleet then finds it
// unusable (its --gate-fail decides; a fleet lock or a floating singleton
// never runs), and no one is notified.
type Deps struct {
	Fleet  FleetDialer  // connects a tick to the fleet database (package fleettick)
	Notify NotifySender // sends notifications (package notify/send)
}

// NotifySender delivers a job's notifications (notify/send.Client).
type NotifySender interface {
	Start(ctx context.Context, t notify.Target) error
	Send(ctx context.Context, t notify.Target, e notify.Event) error
}

// FleetDialer opens a tick's connection to the fleet database, named app
// (operators find it in pg_stat_activity by that), reading the DSN from
// c.DSNFile.
type FleetDialer func(ctx context.Context, c FleetConfig, owners *safefs.Owners, app string) (FleetDB, error)

// FleetDB is a tick's connection to the fleet database: the fleet gate and
// back-offs (for admission), leases on lock groups, a floating singleton's
// slots, and fleet status. Its errors wrap ErrFleetBusy, ErrSlotTaken and
// ErrSlotSchedule where those apply.
type FleetDB interface {
	admit.Fleet
	JobBackoff(ctx context.Context, b backoff.B, host, job, runID string) (*backoff.B, error)
	TakeLease(ctx context.Context, group string, h FleetHolder, ttl time.Duration) (FleetLease, error)
	ClaimSlot(ctx context.Context, job string, slot time.Time, host string, schedule []string) (FleetSlot, error)
	Publish(ctx context.Context, host, job string, record any) error
	Connected() bool // a server connection is open now
	Disconnect()     // let go of the server connection; the next call opens another
	Close()
}

// FleetLease is a held fleet lock: renewed by Keep until stop, given back
// by Release.
type FleetLease interface {
	Fence() int64
	Keep(alive func()) (events <-chan LeaseEvent, stop func())
	BeatEvery() time.Duration
	Release(ctx context.Context) error
	Status() FleetLeaseStatus
}

// FleetHolder names who holds a lease.
type FleetHolder struct {
	Host, Job string
	PID       int
}

// FleetSlot is a floating singleton's slot as the database has it.
type FleetSlot struct {
	Slot      time.Time
	Host      string
	ClaimedAt time.Time
}

// FleetLeaseStatus is where a held lease stands, for the job's "fence".
type FleetLeaseStatus struct {
	Group     string
	Fence     int64
	Until     time.Time
	Confirmed time.Duration // since the renewal that granted Until
	Sure      bool          // a renewal succeeded within half the lease
}

// LeaseEvent is what a held lease asks of the tick: Hard, kill the
// command's whole tree now (the lease is lost, or about to end); else ask
// it to stop (no renewal for half the lease).
type LeaseEvent struct {
	Hard bool
	Err  error
}

// The errors a FleetDB wraps. Their texts are package fleet's, which the
// reasons quote (fleettick's test keeps them equal).
var (
	ErrFleetBusy    = errors.New("fleet lock busy")
	ErrSlotTaken    = errors.New("slot taken")
	ErrSlotSchedule = errors.New("slot-schedule-mismatch")
)

// errNoFleet is why a build without fleet coordination cannot coordinate.
var errNoFleet = errors.New("this build of tickgate (tickgate-tick) has no fleet coordination; run the job with tickgate")
