package runner

import (
	"strings"
	"testing"
	"time"
)

// valid is a Config every rule accepts; each case changes one thing.
func valid() Config {
	return Config{Job: "backfill", Lock: "api", Argv: []string{"/bin/true"}, OK: Codes{0: true}, History: 50}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid; else a substring of the error
	}{
		{"the base case", func(*Config) {}, ""},
		{"bad job name", func(c *Config) { c.Job = "Back fill" }, `invalid job name "Back fill"`},
		{"reserved job name", func(c *Config) { c.Job = "catch-up" }, "reserved (tickgate-catch-up.service is tickgate's own unit)"},
		{"no command", func(c *Config) { c.Argv = nil }, "job backfill: empty command after --"},
		{"empty program", func(c *Config) { c.Argv = []string{""} }, "job backfill: empty command after --"},
		{"bad lock name", func(c *Config) { c.Lock = "a/b" }, `job backfill: --lock: invalid lock name "a/b"`},
		{"relative env file", func(c *Config) { c.EnvFile = "env.json" }, `job backfill: --env-file: "env.json" is not an absolute path`},
		{"negative halt-after", func(c *Config) { c.HaltAfter = -1 }, "job backfill: --halt-after: -1 is negative"},
		{"negative retries", func(c *Config) { c.Retries = -2 }, "job backfill: --retries: -2 is negative"},
		{"retries without codes", func(c *Config) { c.Retries = 2 }, "--retries and --retry-codes go together"},
		{"codes without retries", func(c *Config) { c.Retry = Codes{9: true} }, "--retries and --retry-codes go together"},
		{"retries with codes", func(c *Config) { c.Retry, c.Retries = Codes{9: true}, 2 }, ""},
		{"retry code is ok", func(c *Config) { c.Retry, c.Retries = Codes{0: true}, 1 }, "exit code 0 is in both --retry-codes and --ok-codes"},
		{"retry code is halt", func(c *Config) { c.Retry, c.Retries, c.Halt = Codes{4: true}, 1, Codes{4: true} }, "exit code 4 is in both --retry-codes and --halt-codes"},
		{"ok and done", func(c *Config) { c.Done = Codes{0: true} }, "exit code 0 is in more than one of --ok-codes, --done-codes, --halt-codes"},
		{"done and halt", func(c *Config) { c.Done, c.Halt = Codes{3: true}, Codes{3: true} }, "exit code 3 is in both --done-codes and --halt-codes"},
		{"history 0", func(c *Config) { c.History = 0 }, "--history: 0 is not between 1 and 1000"},
		{"history 1001", func(c *Config) { c.History = 1001 }, "--history: 1001 is not between 1 and 1000"},
		{"history 1000", func(c *Config) { c.History = 1000 }, ""},
		{"blank schedule", func(c *Config) { c.Schedule = []string{"hourly", " "} }, "--schedule: empty calendar expression"},
		{"deadline without schedule", func(c *Config) { c.StartDeadline = time.Minute }, "--start-deadline needs the timer's schedule"},
		{"catch-up without schedule", func(c *Config) { c.CatchUp = true }, "--catch-up once needs the timer's schedule"},
		{"singleton and catch-up without schedule", func(c *Config) {
			c.CatchUp, c.Fleet = true, &FleetConfig{Singleton: true, LeaseTTL: 30 * time.Second}
		}, "--singleton fleet and --catch-up once needs the timer's schedule"},
		{"deadline with schedule", func(c *Config) { c.StartDeadline, c.Schedule = time.Minute, []string{"hourly"} }, ""},
		{"lease too short", func(c *Config) { c.Fleet = &FleetConfig{LeaseTTL: 5 * time.Second} }, "--fleet-lease-ttl: 5s is not between 6s and 1h"},
		{"lease too long", func(c *Config) { c.Fleet = &FleetConfig{LeaseTTL: 2 * time.Hour} }, "--fleet-lease-ttl: 2h0m0s is not between 6s and 1h"},
		{"lease at the bounds", func(c *Config) { c.Fleet = &FleetConfig{LeaseTTL: 6 * time.Second} }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := valid()
			c.edit(&cfg)
			err := cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case c.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want an error with %q", c.want)
			case c.want != "" && !strings.Contains(err.Error(), c.want):
				t.Fatalf("Validate() = %q, want it to contain %q", err, c.want)
			}
		})
	}
}
