//go:build !tickonly

package cli

import (
	"github.com/tickgate/tickgate/helper/exitcode"
	"github.com/tickgate/tickgate/helper/runner"
)

// handOff: the full helper runs every tick itself (see tickonly.go).
func handOff(runner.Config, []string) error { return nil }

func unknownCommand(name string) error {
	return exitcode.UsageError("unknown command %q (see tickgate --help)", name)
}
