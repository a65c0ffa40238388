package cli

import (
	"io"

	ucli "github.com/urfave/cli/v2"
)

// For the tests of package cli_test, which see the whole command line (the
// operator commands are package commands', which imports this one).
var FlagNames = flagNames

type StringFlag = stringFlag

// RawStringFlag is urfave/cli's own flag inside ours.
func RawStringFlag(f ucli.Flag) (*ucli.StringFlag, bool) {
	w, ok := f.(stringFlag)
	if !ok {
		return nil, false
	}
	return w.StringFlag, true
}

func NewApp(w Wiring) *ucli.App { return newApp(nil, nil, io.Discard, io.Discard, w) }
