package runner

import "github.com/tickgate/tickgate/helper/state"

// transition names what changed with this run, for notifications: the
// first failure, a halt, done, or a recovery ("" = nothing changed).
func transition(result string, prevFails, fails int) string {
	switch {
	case result == state.Halted:
		return "halted"
	case result == state.Done:
		return "done"
	case result == state.Success && prevFails > 0:
		return "recovered"
	case (result == state.Failed || result == state.Interrupted) && prevFails == 0 && fails > 0:
		return "failing"
	}
	return ""
}
