package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// StartRequest is the file `tickgate start` leaves in a job's directory for
// the tick it starts through the unit: a unit cannot be given arguments for
// one start, so the request says what that start is (an operator's, not the
// schedule's; forced or not). The next tick takes it (reads and removes it)
// as it begins.
const StartRequest = "start-request"

// RequestTTL is how old a request may be and still be taken: a request whose
// start never came (the unit failed to start, the operator's command was
// killed) must not make some later timer tick a forced one.
const RequestTTL = time.Minute

// Request is the content of a start request.
type Request struct {
	At    time.Time `json:"at"`
	Force bool      `json:"force,omitempty"` // ignore the gate (closed, paused, a rollout window), never a lock group or a marker
	By    string    `json:"by,omitempty"`    // who asked (a user name)
}

// WriteRequest writes a start request atomically. Call it under Locked.
func (j *Job) WriteRequest(q Request) error {
	data, err := json.Marshal(q)
	if err != nil {
		return err
	}
	return j.Dir.WriteAtomicHeld(StartRequest, append(data, '\n'), 0o644)
}

// TakeRequest reads and removes the job's start request: (nil, nil) when
// there is none, or it is older than RequestTTL (or from the future: a clock
// stepped back) — then it is removed and ignored. One that cannot be read
// is removed and reported; the tick goes on as a timer's.
func (j *Job) TakeRequest(now time.Time) (*Request, error) {
	data, err := j.Dir.ReadFile(StartRequest, MaxMarkerSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	_, rmErr := j.Dir.Remove(StartRequest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Path(StartRequest), err)
	}
	q := &Request{}
	if err := json.Unmarshal(data, q); err != nil {
		return nil, fmt.Errorf("%s does not parse: %w", j.Path(StartRequest), err)
	}
	if age := now.Sub(q.At); age > RequestTTL || age < -RequestTTL {
		return nil, nil
	}
	if rmErr != nil {
		// Taken but left in place: a later tick could take it again.
		return nil, fmt.Errorf("%s: remove: %w", j.Path(StartRequest), rmErr)
	}
	return q, nil
}
