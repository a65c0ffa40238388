package manpage_test

import (
	"strings"
	"testing"

	"github.com/tickgate/tickgate/helper/cli"
	"github.com/tickgate/tickgate/helper/commands"
	"github.com/tickgate/tickgate/helper/manpage"
)

// Every visible command has its page, every flag of it is documented there,
// and no line of text starts a roff request by accident.
func TestPages(t *testing.T) {
	app := cli.App(cli.Wiring{Commands: commands.All})
	pages := manpage.Pages(app, manpage.Meta{Version: "1.2.3", Date: "2026-12-06", ExitStatus: map[int]string{75: "skipped"}})
	top, ok := pages["tickgate.1"]
	if !ok {
		t.Fatal("no tickgate.1")
	}
	for _, want := range []string{`.TH TICKGATE 1 "2026-12-06" "tickgate 1.2.3"`, ".SH EXIT STATUS\n.TP\n.B 75\nskipped", `\fB\-\-state\-dir\fR \fIDIR\fR`} {
		if !strings.Contains(top, want) {
			t.Errorf("tickgate.1 lacks %q", want)
		}
	}
	if strings.Contains(top, "__complete") {
		t.Error("tickgate.1 lists the hidden __complete")
	}
	for _, c := range app.VisibleCommands() {
		p, ok := pages["tickgate-"+c.Name+".1"]
		if !ok {
			t.Errorf("no page for %s", c.Name)
			continue
		}
		for _, f := range c.VisibleFlags() {
			if n := f.Names()[0]; !strings.Contains(p, `\-\-`+strings.ReplaceAll(n, "-", `\-`)) {
				t.Errorf("tickgate-%s.1 lacks --%s", c.Name, n)
			}
		}
		for _, s := range c.VisibleCommands() {
			if !strings.Contains(p, ".SS tickgate "+c.Name+" "+strings.ReplaceAll(s.Name, "-", `\-`)) {
				t.Errorf("tickgate-%s.1 lacks its subcommand %s", c.Name, s.Name)
			}
		}
	}
	for name, p := range pages {
		for i, line := range strings.Split(p, "\n") {
			if strings.HasPrefix(line, ".") && !knownRequest(line) {
				t.Errorf("%s:%d: not a request this package writes: %q", name, i+1, line)
			}
		}
	}
}

func knownRequest(line string) bool {
	for _, r := range []string{`.\"`, ".TH ", ".SH ", ".SS ", ".TP", ".PP", ".nf", ".fi", ".B "} {
		if strings.HasPrefix(line, r) {
			return true
		}
	}
	return false
}
