package systemd

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
)

// Unit is one job's tickgate-JOB.service, for starting it and following
// the start (tickgate start).
type Unit struct {
	Name string
	conn *sddbus.Conn
}

// Exit is how the main process of a unit's latest run ended.
type Exit struct {
	Code     int    // the exit status, or 128 + the signal that killed it
	How      string // "exited", "killed" or "dumped" (systemd's ExecMainCode)
	Started  *time.Time
	Finished *time.Time
}

// OpenUnit connects to systemd and checks that job's service is loaded.
func OpenUnit(ctx context.Context, job string) (*Unit, error) {
	conn, err := connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("systemd D-Bus: %w", err)
	}
	u := &Unit{Name: UnitPrefix + job + ".service", conn: conn}
	p, err := conn.GetUnitPropertyContext(ctx, u.Name, "LoadState")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("systemd D-Bus: %s: %w", u.Name, err)
	}
	if s, _ := p.Value.Value().(string); s != "loaded" {
		conn.Close()
		return nil, fmt.Errorf("%s is not loaded (LoadState %s): is the job deployed on this host?", u.Name, p.Value.String())
	}
	return u, nil
}

// Close lets go of the D-Bus connection.
func (u *Unit) Close() { u.conn.Close() }

// State is the unit's ActiveState (active, activating, inactive, failed, ...)
// and its latest invocation id ("" if it never ran since it was loaded).
func (u *Unit) State(ctx context.Context) (active, invocation string, err error) {
	props, err := u.conn.GetUnitPropertiesContext(ctx, u.Name)
	if err != nil {
		return "", "", fmt.Errorf("systemd D-Bus: %s: %w", u.Name, err)
	}
	active, _ = props["ActiveState"].(string)
	if b, ok := props["InvocationID"].([]byte); ok && len(b) > 0 {
		invocation = hex.EncodeToString(b)
	}
	return active, invocation, nil
}

// Start queues a start of the unit ("replace", as systemctl start does). The
// channel receives systemd's result for the start job when it is over; for
// a tickgate job (Type=oneshot) that is when its run ended: "done" (exit 0,
// or 75 skipped), "failed", "canceled", "timeout", "dependency".
func (u *Unit) Start(ctx context.Context) (<-chan string, error) {
	ch := make(chan string, 1)
	if _, err := u.conn.StartUnitContext(ctx, u.Name, "replace", ch); err != nil {
		return nil, fmt.Errorf("systemd D-Bus: start %s: %w", u.Name, err)
	}
	return ch, nil
}

// Exit is how the unit's latest run's main process ended.
func (u *Unit) Exit(ctx context.Context) (Exit, error) {
	props, err := u.conn.GetUnitTypePropertiesContext(ctx, u.Name, "Service")
	if err != nil {
		return Exit{}, fmt.Errorf("systemd D-Bus: %s: %w", u.Name, err)
	}
	status, _ := props["ExecMainStatus"].(int32)
	code, _ := props["ExecMainCode"].(int32)
	e := Exit{Code: int(status), Started: usecTime(props["ExecMainStartTimestamp"]), Finished: usecTime(props["ExecMainExitTimestamp"])}
	switch code { // CLD_* of waitid(2)
	case 1:
		e.How = "exited"
	case 2, 3:
		e.How = map[int32]string{2: "killed", 3: "dumped"}[code]
		e.Code = 128 + int(status)
	default:
		e.How = fmt.Sprintf("code %d", code)
	}
	return e, nil
}
