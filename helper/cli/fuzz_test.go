package cli

import (
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Exit-code lists: every accepted code is 0-255, and the set written back as
// a list parses to the same set.
func FuzzParseCodes(f *testing.F) {
	for _, s := range []string{"0", "0,3", " 3 , 4 ", "", "256", "-1", "1,,2", "0x10", "+3", "3,3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := parseCodes("ok-codes", s)
		if err != nil {
			if !strings.Contains(err.Error(), "--ok-codes") {
				t.Fatalf("error does not name the flag: %v", err)
			}
			return
		}
		var parts []string
		for c := range set {
			if c < 0 || c > 255 {
				t.Fatalf("parseCodes(%q) accepted %d", s, c)
			}
			parts = append(parts, strconv.Itoa(c))
		}
		sort.Strings(parts)
		again, err := parseCodes("ok-codes", strings.Join(parts, ","))
		if err != nil || len(again) != len(set) {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}
