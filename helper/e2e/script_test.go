package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs the CLI scenarios in helper/testdata/script/*.txtar
// against the built binary, each in its own $WORK with its own state, lock
// and gate paths.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "testdata", "script"),
		Setup: func(e *testscript.Env) error {
			e.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+e.Getenv("PATH"))
			e.Setenv("TICKGATE_STATE_ROOT", e.WorkDir+"/state")
			e.Setenv("TICKGATE_DATA_ROOT", e.WorkDir+"/data")
			e.Setenv("TICKGATE_LOCK_DIR", e.WorkDir+"/lock")
			e.Setenv("TICKGATE_GATE", e.WorkDir+"/etc/gate.json")
			e.Setenv("TICKGATE_METRICS_DIR", e.WorkDir+"/metrics")
			return nil
		},
	})
}
