package cli

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/tickgate/tickgate/helper/state"
	"github.com/tickgate/tickgate/helper/timespec"
)

// The job contract's shared cases (helper/testdata/contract.json): the
// preflight's test suite (roles/tickgate/tests/test_contract.py) runs the
// same file, so the helper and preflight cannot drift apart.
type contractCases struct {
	JobName, LockName, Duration, Codes, HaltAfter struct {
		Valid, Invalid []json.RawMessage
	}
}

func loadContract(t *testing.T) contractCases {
	t.Helper()
	data, err := os.ReadFile("../testdata/contract.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	var c contractCases
	for key, dst := range map[string]any{"job_name": &c.JobName, "lock_name": &c.LockName, "duration": &c.Duration, "codes": &c.Codes, "halt_after": &c.HaltAfter} {
		if err := json.Unmarshal(raw[key], dst); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	return c
}

func TestJobContract(t *testing.T) {
	c := loadContract(t)
	str := func(r json.RawMessage) string {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			t.Fatalf("case %s: %v", r, err)
		}
		return s
	}
	codes := func(r json.RawMessage) string {
		var list []int
		if err := json.Unmarshal(r, &list); err != nil {
			t.Fatalf("case %s: %v", r, err)
		}
		parts := make([]string, len(list))
		for i, n := range list {
			parts[i] = strconv.Itoa(n) // as the role renders --ok-codes
		}
		return strings.Join(parts, ",")
	}
	checks := []struct {
		field string
		set   struct{ Valid, Invalid []json.RawMessage }
		check func(json.RawMessage) error
	}{
		{"job_name", c.JobName, func(r json.RawMessage) error { return state.ValidName("job", str(r)) }},
		{"lock_name", c.LockName, func(r json.RawMessage) error { return state.ValidName("lock", str(r)) }},
		{"duration", c.Duration, func(r json.RawMessage) error { _, err := timespec.ParseDuration(str(r)); return err }},
		{"codes", c.Codes, func(r json.RawMessage) error { _, err := parseCodes("ok-codes", codes(r)); return err }},
		{"halt_after", c.HaltAfter, func(r json.RawMessage) error {
			return runFlags(t, "--halt-after", string(r))
		}},
	}
	for _, ch := range checks {
		for _, v := range ch.set.Valid {
			if err := ch.check(v); err != nil {
				t.Errorf("%s %s: the helper rejects a valid value: %v", ch.field, v, err)
			}
		}
		for _, v := range ch.set.Invalid {
			if err := ch.check(v); err == nil {
				t.Errorf("%s %s: the helper accepts an invalid value", ch.field, v)
			}
		}
	}
}

// runFlags parses `tickgate run FLAG VALUE job -- true` up to the runner.
func runFlags(t *testing.T, flag, value string) error {
	t.Helper()
	var cfgErr error
	app := newApp(nil, strings.NewReader(""), &strings.Builder{}, &strings.Builder{}, Wiring{})
	for _, cmd := range app.Commands {
		if cmd.Name == "run" {
			cmd.Action = func(c *ucli.Context) error { _, cfgErr = runConfig(c, &Env{}); return nil }
		}
	}
	if err := app.Run([]string{"tickgate", "--state-dir", t.TempDir(), "run", flag, value, "job", "--", "true"}); err != nil {
		return err
	}
	return cfgErr
}
