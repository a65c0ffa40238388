package reason

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var kebab = regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)

func TestEveryPrefixIsKebabCase(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range All {
		if !kebab.MatchString(p) {
			t.Errorf("reason prefix %q: not kebab-case (lower-case words joined by hyphens)", p)
		}
		if seen[p] {
			t.Errorf("reason prefix %q: listed twice", p)
		}
		seen[p] = true
	}
	for old, now := range Legacy {
		if !seen[now] {
			t.Errorf("legacy spelling %q maps to %q, which is no prefix", old, now)
		}
		if kebab.MatchString(old) {
			t.Errorf("legacy spelling %q is already kebab-case: no need to keep it", old)
		}
	}
}

func TestHasAcceptsTheOldSpellingForOneRelease(t *testing.T) {
	for _, c := range []struct {
		reason, prefix string
		want           bool
	}{
		{"missed-deadline: due 2026-12-07T01:00:00Z, 3h late", MissedDeadline, true},
		{"missed deadline: due 2026-12-07T01:00:00Z, 3h late", MissedDeadline, true}, // written by 0.4
		{"fleet lock lost: fleet lease lost", FleetLockLost, true},
		{"fleet-lock-lost", FleetLockLost, true},
		{"done: done-code 0: drained", Done, true},
		{"done-code 0: drained", Done, false}, // a prefix is a whole word
		{"gate-closed: deploy", JobPaused, false},
		{"missed deadlines: x", MissedDeadline, false},
	} {
		if got := Has(c.reason, c.prefix); got != c.want {
			t.Errorf("Has(%q, %q) = %v, want %v", c.reason, c.prefix, got, c.want)
		}
	}
}

func TestEveryPrefixIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range All {
		if !strings.Contains(string(doc), "| `"+p) && !strings.Contains(string(doc), "/ `"+p) {
			t.Errorf("reason prefix %q: not in docs/operating.md's table of reasons", p)
		}
	}
}
