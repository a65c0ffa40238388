package cli

import ucli "github.com/urfave/cli/v2"

func opsCommands(e *env) []*ucli.Command { return nil }
