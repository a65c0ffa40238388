package textsafe

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// Hostile is text a job could put where an operator reads it: a window
// title change, a screen clear, a C1 CSI, a bidi override, a line separator,
// a raw newline and a byte that is not UTF-8.
const Hostile = "a\x1b]0;pwned\x07b\x1b[2Jc\u009b31md\u202eevil\u202c\u2028e\nf\xffg\x7f"

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text, ünïcödé, 日本語", "plain text, ünïcödé, 日本語"},
		{"", ""},
		{"tab\there", `tab\there`},
		{"\x1b[2J", `\x1b[2J`},
		{"\x1b]0;title\x07", `\x1b]0;title\a`},
		{"\u009b", `\u009b`},
		{"\u202eabc\u202c", `\u202eabc\u202c`},
		{"\u2066\u2069\u061c\u200e\u200f", `\u2066\u2069\u061c\u200e\u200f`},
		{"\u2028\u2029", `\u2028\u2029`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"del\x7f", `del\x7f`},
		{"nul\x00", `nul\x00`},
		{Hostile, `a\x1b]0;pwned\ab\x1b[2Jc\u009b31md\u202eevil\u202c\u2028e\nf\xffg\x7f`},
	} {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := Clean(c.in); !printable(got) {
			t.Errorf("Clean(%q) = %q is not safe to print", c.in, got)
		}
	}
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if Unsafe(r) {
			return false
		}
	}
	return true
}

func TestEscapeJSON(t *testing.T) {
	in := map[string]string{"reason": Hostile, "ok": "plain ünïcödé"}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := EscapeJSON(raw)
	if !printable(string(out)) {
		t.Fatalf("EscapeJSON left an unsafe rune: %q", out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("EscapeJSON broke the JSON: %v: %s", err, out)
	}
	// The same value: what encoding/json made of the text (invalid bytes
	// become U+FFFD), nothing lost by the escaping.
	var want map[string]string
	_ = json.Unmarshal(raw, &want)
	if back["reason"] != want["reason"] || back["ok"] != in["ok"] {
		t.Fatalf("EscapeJSON changed the value: %q, want %q", back, want)
	}
	plain := []byte(`{"a": "nothing to escape, ünïcödé"}`)
	if got := EscapeJSON(plain); &got[0] != &plain[0] {
		t.Fatal("EscapeJSON copied text with nothing to escape")
	}
}

func TestStrings(t *testing.T) {
	type inner struct{ Reason string }
	type row struct {
		Name    string
		Ptr     *inner
		List    []string
		Map     map[string]inner
		Raw     json.RawMessage
		Any     any
		private string
	}
	r := &row{Name: Hostile, Ptr: &inner{Hostile}, List: []string{"ok", Hostile}, Map: map[string]inner{"k": {Hostile}},
		Raw: json.RawMessage(`{"reason":"x\u001b[2J","n":12345678901234567890}`), Any: map[string]any{"r": Hostile}, private: Hostile}
	Strings(r)
	out, _ := json.Marshal(r)
	if strings.Contains(string(out), `\u001b`) || strings.Contains(string(out), "\u202e") {
		t.Fatalf("Strings left a control character: %s", out)
	}
	if r.Name != Clean(Hostile) || r.Ptr.Reason != Clean(Hostile) || r.List[1] != Clean(Hostile) || r.Map["k"].Reason != Clean(Hostile) {
		t.Fatalf("Strings: %+v", r)
	}
	if !strings.Contains(string(r.Raw), `"x\\x1b[2J"`) || !strings.Contains(string(r.Raw), "12345678901234567890") {
		t.Fatalf("raw JSON: %s", r.Raw)
	}
	if r.Any.(map[string]any)["r"] != Clean(Hostile) {
		t.Fatalf("interface: %v", r.Any)
	}
	if r.private != Hostile {
		t.Fatal("an unexported field was changed")
	}
}

func FuzzClean(f *testing.F) {
	f.Add(Hostile)
	f.Add("plain")
	f.Fuzz(func(t *testing.T, s string) {
		got := Clean(s)
		if !printable(got) {
			t.Fatalf("Clean(%q) = %q", s, got)
		}
		if firstUnsafe(s) < 0 && got != s {
			t.Fatalf("Clean changed safe text %q to %q", s, got)
		}
		raw, _ := json.Marshal(s)
		esc := EscapeJSON(raw)
		var a, b string
		if json.Unmarshal(raw, &a) != nil || json.Unmarshal(esc, &b) != nil || a != b || !printable(string(esc)) {
			t.Fatalf("EscapeJSON(%s) = %s", raw, esc)
		}
	})
}

// TestSharedCases runs the cases playbooks/status.yml's filter runs too.
func TestSharedCases(t *testing.T) {
	data, err := os.ReadFile("../testdata/printable.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct{ In, Out string }
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) < 10 {
		t.Fatalf("only %d cases", len(doc.Cases))
	}
	for _, c := range doc.Cases {
		if got := Clean(c.In); got != c.Out {
			t.Errorf("Clean(%q) = %q, want %q", c.In, got, c.Out)
		}
	}
}
