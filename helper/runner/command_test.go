package runner

import (
	"slices"
	"testing"
)

// The command's environment keeps the last of a variable set twice (the
// tick's own TICKGATE_* over inherited ones), in their order, as os/exec
// did before the tick started its command with syscall.ForkExec.
func TestDedupEnv(t *testing.T) {
	got := dedupEnv([]string{"A=1", "TICKGATE_STATE_DIR=/old", "B=2", "A=3", "NOEQUALS", "TICKGATE_STATE_DIR=/new"})
	want := []string{"B=2", "A=3", "NOEQUALS", "TICKGATE_STATE_DIR=/new"}
	if !slices.Equal(got, want) {
		t.Fatalf("dedupEnv: %q, want %q", got, want)
	}
}
