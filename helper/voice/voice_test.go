package voice

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A message is a call's format (its first string-literal argument) to one
// of these: errors that reach the user, warnings, and lines printed to
// stderr.
var messageFuncs = map[string]bool{
	"fmt.Errorf": true, "errors.New": true, "exitcode.New": true, "exitcode.UsageError": true,
	"Warn":    true, // report.Reporter.Warn and voice.Warn, through any receiver
	"Warning": true,
	"Say":     true,
}

// properNouns may start a message with a capital.
var properNouns = []string{"PostgreSQL", "D-Bus", "JSON", "TLS", "DSN", "SIGKILL", "SIGTERM"}

var (
	jobEquals = regexp.MustCompile(`(^|: )job=%`)
	capital   = regexp.MustCompile(`^[A-Z][a-z]`)
)

// TestMessagesFollowTheRules checks every message in the helper's sources
// against the rules in voice.go that a machine can check.
func TestMessagesFollowTheRules(t *testing.T) {
	root := ".."
	fset := token.NewFileSet()
	count := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "e2e" || d.Name() == "chaos") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if filepath.ToSlash(path) == "../cmd/tickgate-exec/main.go" {
			return nil // links nothing it can do without (its comment says why)
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && f.Name.Name != "voice" {
				if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, "tickgate: ") {
					t.Errorf("%s: %q: prints tickgate's prefix by hand; use package voice", fset.Position(lit.Pos()), v)
				}
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			if !messageFuncs[callee(call)] {
				return true
			}
			var lit *ast.BasicLit
			for _, a := range call.Args { // the format: the first string literal
				if l, ok := a.(*ast.BasicLit); ok && l.Kind == token.STRING {
					lit = l
					break
				}
			}
			if lit == nil {
				return true
			}
			msg, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			count++
			where := fset.Position(lit.Pos()).String()
			for _, p := range problems(msg) {
				t.Errorf("%s: %q: %s", where, msg, p)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if count < 100 {
		t.Fatalf("only %d messages found: the scan is not looking where the messages are", count)
	}
}

func callee(call *ast.CallExpr) string {
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		if id, ok := f.X.(*ast.Ident); ok && (id.Name == "fmt" || id.Name == "errors" || id.Name == "exitcode") {
			return id.Name + "." + f.Sel.Name
		}
		return f.Sel.Name
	case *ast.Ident:
		return f.Name
	}
	return ""
}

// problems lists the rules msg breaks.
func problems(msg string) []string {
	var out []string
	if strings.HasSuffix(msg, ".") || strings.HasSuffix(msg, ".\n") {
		out = append(out, "ends with a period")
	}
	if strings.HasSuffix(msg, "\n") {
		out = append(out, "ends with a newline (the printer adds it)")
	}
	if capital.MatchString(msg) && !startsWithProperNoun(msg) {
		out = append(out, "starts with a capital letter")
	}
	if jobEquals.MatchString(msg) {
		out = append(out, "names a job as job=NAME (the tick's key=value line only); write `job NAME: `")
	}
	if strings.HasPrefix(msg, "tickgate: ") {
		out = append(out, "carries the program's prefix, which the printer adds")
	}
	if strings.HasPrefix(msg, "error: ") || strings.HasPrefix(msg, "warning: ") {
		out = append(out, "carries its own severity, which the printer adds")
	}
	return out
}

func startsWithProperNoun(msg string) bool {
	for _, n := range properNouns {
		if strings.HasPrefix(msg, n) {
			return true
		}
	}
	return false
}

func TestProblems(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want int
	}{
		{"job %s: lock group %s busy", 0},
		{"job=%s: fleet status not published: %v", 1},
		{"Could not read the gate.", 2},
		{"tickgate: %v", 1},
		{"DSN file %s: not 0600", 0},
		{"--lock-wait: %v", 0},
	} {
		if got := problems(c.msg); len(got) != c.want {
			t.Errorf("problems(%q) = %v, want %d", c.msg, got, c.want)
		}
	}
}
