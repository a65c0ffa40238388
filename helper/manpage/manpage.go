// Package manpage renders man pages (roff, section 1) from the CLI's own
// definition, so they cannot drift from --help: tickgate(1) for the program
// and its global flags, and one page per command, tickgate-CMD(1), with its
// subcommands.
package manpage

import (
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// Meta is what a page's header and fixed sections say.
type Meta struct {
	Version string // the .TH footer: "tickgate VERSION"
	Date    string // YYYY-MM-DD
	// ExitStatus is the EXIT STATUS section of tickgate(1), code to meaning.
	ExitStatus map[int]string
}

// Pages renders tickgate(1) and tickgate-CMD(1) for each visible command,
// by file name (tickgate.1, tickgate-gate.1, ...).
func Pages(app *ucli.App, m Meta) map[string]string {
	pages := map[string]string{}
	var b page
	b.header(app.Name, m)
	b.section("NAME")
	b.text(app.Name + " \\- " + escape(app.Usage))
	b.section("SYNOPSIS")
	b.raw(fmt.Sprintf(".B %s\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]", app.Name))
	b.section("DESCRIPTION")
	b.para(app.Description)
	b.section("GLOBAL OPTIONS")
	b.flags(app.Flags)
	b.section("COMMANDS")
	var seeAlso []string
	for _, c := range app.VisibleCommands() {
		ref := app.Name + "-" + c.Name
		b.raw(".TP\n\\fB" + escape(c.Name) + "\\fR")
		b.text(escape(c.Usage) + "; see \\fB" + escape(ref) + "\\fR(1).")
		seeAlso = append(seeAlso, ref)
		pages[ref+".1"] = commandPage(app.Name, c, m)
	}
	if len(m.ExitStatus) > 0 {
		b.section("EXIT STATUS")
		codes := make([]int, 0, len(m.ExitStatus))
		for c := range m.ExitStatus {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			b.raw(fmt.Sprintf(".TP\n.B %d", c))
			b.text(escape(m.ExitStatus[c]))
		}
	}
	b.seeAlso(seeAlso)
	pages[app.Name+".1"] = b.String()
	return pages
}

func commandPage(prog string, c *ucli.Command, m Meta) string {
	name := prog + "-" + c.Name
	var b page
	b.header(name, m)
	b.section("NAME")
	b.text(escape(name) + " \\- " + escape(c.Usage))
	b.section("SYNOPSIS")
	b.synopsis(prog+" "+c.Name, c)
	if c.Description != "" {
		b.section("DESCRIPTION")
		b.para(c.Description)
	}
	if len(c.VisibleFlags()) > 0 {
		b.section("OPTIONS")
		b.flags(c.VisibleFlags())
	}
	if subs := c.VisibleCommands(); len(subs) > 0 {
		b.section("COMMANDS")
		for _, s := range subs {
			b.raw(".SS " + escape(prog+" "+c.Name+" "+s.Name))
			b.text(escape(s.Usage))
			b.synopsis(prog+" "+c.Name+" "+s.Name, s)
			b.para(s.Description)
			if fl := s.VisibleFlags(); len(fl) > 0 {
				b.flags(fl)
			}
		}
	}
	b.section("GLOBAL OPTIONS")
	b.text("See \\fB" + prog + "\\fR(1).")
	b.seeAlso([]string{prog})
	return b.String()
}

type page struct{ strings.Builder }

func (b *page) header(name string, m Meta) {
	fmt.Fprintf(b, ".\\\" Generated from the CLI definition (helper/manpage); do not edit.\n")
	fmt.Fprintf(b, ".TH %s 1 %q %q \"tickgate manual\"\n", strings.ToUpper(escape(name)), m.Date, "tickgate "+m.Version)
}

func (b *page) section(s string) { b.raw(".SH " + s) }

func (b *page) raw(s string) { b.WriteString(s + "\n") }

// text writes one paragraph's line (already escaped), guarded against a
// leading control character.
func (b *page) text(s string) {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = "\\&" + s
	}
	b.raw(s)
}

// para writes free text: its lines as they are (no filling: the help texts
// are laid out by hand), an "Example:" line set apart.
func (b *page) para(s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	b.raw(".PP\n.nf")
	for _, line := range strings.Split(s, "\n") {
		b.text(escape(line))
	}
	b.raw(".fi")
}

func (b *page) synopsis(path string, c *ucli.Command) {
	u := c.UsageText
	if u == "" {
		u = path + " [OPTIONS]"
		if c.ArgsUsage != "" {
			u += " " + c.ArgsUsage
		}
	}
	b.raw(".PP\n.nf")
	for _, line := range strings.Split(strings.TrimSpace(u), "\n") {
		b.text("\\fB" + escape(strings.TrimSpace(line)) + "\\fR")
	}
	b.raw(".fi")
}

func (b *page) flags(flags []ucli.Flag) {
	for _, f := range flags {
		d, ok := f.(ucli.DocGenerationFlag)
		if !ok {
			continue
		}
		placeholder, usage := unquoteUsage(d.GetUsage())
		var names []string
		for _, n := range f.Names() {
			dash := "\\-\\-"
			if len(n) == 1 {
				dash = "\\-"
			}
			names = append(names, "\\fB"+dash+escape(n)+"\\fR")
		}
		head := strings.Join(names, ", ")
		if d.TakesValue() {
			if placeholder == "" {
				placeholder = "VALUE"
			}
			head += " \\fI" + escape(placeholder) + "\\fR"
		}
		b.raw(".TP\n" + head)
		var extra []string
		if d.TakesValue() {
			if def := d.GetDefaultText(); def != "" {
				extra = append(extra, "default: "+def)
			} else if v := d.GetValue(); v != "" && v != `""` {
				extra = append(extra, "default: "+v)
			}
		}
		if env := d.GetEnvVars(); len(env) > 0 {
			extra = append(extra, "environment: "+strings.Join(env, ", "))
		}
		line := usage
		if len(extra) > 0 {
			line += " (" + strings.Join(extra, "; ") + ")"
		}
		b.text(escape(line))
	}
}

func (b *page) seeAlso(refs []string) {
	b.section("SEE ALSO")
	var out []string
	for _, r := range refs {
		out = append(out, "\\fB"+escape(r)+"\\fR(1)")
	}
	out = append(out, "\\fBsystemd.timer\\fR(5)", "\\fBsystemctl\\fR(1)", "\\fBjournalctl\\fR(1)")
	b.text(strings.Join(out, ", "))
}

// escape makes text safe in roff: backslashes, and hyphens as \- (so they
// copy and search as ASCII hyphens).
func escape(s string) string {
	s = strings.ReplaceAll(s, "\\", "\\e")
	return strings.ReplaceAll(s, "-", "\\-")
}

// unquoteUsage splits a flag's usage into its `PLACEHOLDER` and the text
// without the backquotes (urfave/cli's rule, which it does not export).
func unquoteUsage(usage string) (string, string) {
	if i := strings.IndexByte(usage, '`'); i >= 0 {
		if j := strings.IndexByte(usage[i+1:], '`'); j >= 0 {
			name := usage[i+1 : i+1+j]
			return name, usage[:i] + name + usage[i+1+j+1:]
		}
	}
	return "", usage
}
