package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/helper/cli"
)

func TestCompletions(t *testing.T) {
	dir := t.TempDir()
	for _, j := range []string{"alpha", "beta", "backfill"} {
		if err := os.Mkdir(filepath.Join(dir, j), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Not jobs: a file, a name no job can have.
	if err := os.WriteFile(filepath.Join(dir, "notadir"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "Bad Name"), 0o755); err != nil {
		t.Fatal(err)
	}
	sd := "--state-dir=" + dir
	owned := filepath.Join(t.TempDir(), "owned")
	if err := os.MkdirAll(filepath.Join(owned, "delta"), 0o755); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0 // make test runs as root
	if root {
		for _, p := range []string{owned, filepath.Join(owned, "delta")} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		words  []string
		want   string
		asRoot bool // the state dir is chowned to nobody
	}{
		{[]string{""}, "run start gate drain status clear halt fleet catch-up backoff history fence cron", false},
		{[]string{"g"}, "gate", false},
		{[]string{"gate", "p"}, "pause", false},
		{[]string{"gate", "check", "--lock-s"}, "--lock-scope", false},
		{[]string{"clear", "--"}, "--done --halted", false},
		{[]string{sd, "clear", ""}, "alpha backfill beta", false},
		{[]string{"--state-dir", dir, "history", "--limit", "3", "b"}, "backfill beta", false},
		{[]string{sd, "gate", "pause", "alpha", ""}, "alpha backfill beta", false},
		{[]string{sd, "start", "--wait", ""}, "alpha backfill beta", false},
		{[]string{sd, "halt", "--reason", ""}, "", false},         // the flag's value
		{[]string{sd, "run", "alpha", "--", "/bin/t"}, "", false}, // the shell's own
		{[]string{sd, "drain", ""}, "", false},                    // takes no JOB
		{[]string{"nosuch", ""}, "", false},
		// The state dir as deployed: the supervisor's (here nobody's).
		{[]string{"--supervisor", "nobody", "--state-dir", owned, "clear", ""}, "delta", true},
		{[]string{"--state-dir", owned, "clear", ""}, "", true}, // not the supervisor's: not trusted
	} {
		if tc.asRoot && !root {
			t.Logf("%q: not as root, not checked", tc.words)
			continue
		}
		// The global flags' defaults, as a command sees them with no flag
		// and no environment.
		defaults := map[string]string{"state-dir": "/var/lib/tickgate", "supervisor": "tickgate"}
		got := strings.Join(completions(cli.App(cli.Wiring{Commands: All}), tc.words, defaults), " ")
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}
