package fleettick

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tickgate/tickgate/helper/fleet"
	"github.com/tickgate/tickgate/helper/runner"
)

// The runner quotes these errors' texts in its reasons (lock-busy: …,
// slot-schedule-mismatch: …): its sentinels must read as package fleet's.
func TestSentinelsReadAsTheFleets(t *testing.T) {
	for _, c := range []struct{ fleet, runner error }{
		{fleet.ErrBusy, runner.ErrFleetBusy},
		{fleet.ErrSlotTaken, runner.ErrSlotTaken},
		{fleet.ErrSlotSchedule, runner.ErrSlotSchedule},
	} {
		if c.fleet.Error() != c.runner.Error() {
			t.Errorf("fleet says %q, runner %q", c.fleet, c.runner)
		}
	}
}

func TestTagKeepsTheTextAndAddsTheMatch(t *testing.T) {
	err := fmt.Errorf("%w: held by job long on host tg-f1", fleet.ErrBusy)
	got := tag(err, fleet.ErrBusy, runner.ErrFleetBusy)
	if got.Error() != err.Error() || !errors.Is(got, runner.ErrFleetBusy) || !errors.Is(got, fleet.ErrBusy) {
		t.Fatalf("tag: %q, Is runner %v, Is fleet %v", got, errors.Is(got, runner.ErrFleetBusy), errors.Is(got, fleet.ErrBusy))
	}
	other := errors.New("connection refused")
	if tag(other, fleet.ErrBusy, runner.ErrFleetBusy) != other {
		t.Fatal("tag changed an error that does not match")
	}
	if errors.Is(tag(other, fleet.ErrBusy, runner.ErrFleetBusy), runner.ErrFleetBusy) {
		t.Fatal("an unrelated error matches ErrFleetBusy")
	}
}
