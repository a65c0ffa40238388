package runner

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickgate/tickgate/helper/blackout"
	"github.com/tickgate/tickgate/helper/lockgroup"
	"github.com/tickgate/tickgate/helper/require"
	"github.com/tickgate/tickgate/helper/safefs"
	"github.com/tickgate/tickgate/helper/state"
)

// Codes is a set of exit codes.
type Codes map[int]bool

// Config is one `tickgate run` invocation, already validated.
type Config struct {
	Job, Lock  string
	Argv       []string
	StateDir   string
	LockDir    string
	GatePath   string
	MetricsDir string
	DataDir    string         // root of the jobs' own writable dirs: the child gets DataDir/JOB
	Owners     *safefs.Owners // who may own tickgate's directories besides root and us

	// Cred, when set, is the job's user: the command runs as it (through
	// the execshim when this process is not root), never tickgate itself.
	Cred    *Credential
	WorkDir string // the command's working directory ("" = inherited)
	// EnvFile holds the job's own variables (package jobenv): given to the
	// command only, never to tickgate itself ("" = none).
	EnvFile string

	// Fleet, when set, makes the tick consult the fleet gate and (with
	// LockScope) hold its lock group fleet-wide too.
	Fleet *FleetConfig

	LockWait time.Duration
	// LockSlots is how many runs of the lock group may run at once on this
	// host (0 and 1: one).
	LockSlots int
	// Schedule is the timer's OnCalendar= lines: with it a tick knows when
	// it was due (StartDeadline, CatchUp, a floating singleton's slot).
	Schedule      []string
	StartDeadline time.Duration // skip a run that would start this long after it was due
	CatchUp       bool          // a tick the gate skipped is run once when it reopens
	// CatchUpOnPrecondition: with CatchUp, a tick a precondition skipped
	// owes a run too (catch_up_on: [gate, precondition]).
	CatchUpOnPrecondition bool
	// Requires are the job's preconditions (package require), checked in
	// order before the lock group is taken, and again after a lock wait.
	Requires []require.Requirement
	// RequiresText is --requires as given, kept in state.json for an
	// operator's gate check.
	RequiresText string
	// Blackouts are the recurring windows in which the job does not start.
	Blackouts      []blackout.Window
	History        int    // runs kept in state.json (0: state.DefaultHistory)
	NotifyDir      string // where the deploy put JOB.json, the job's notification targets
	OK, Done, Halt Codes
	// Retry: exit codes tried again within the tick, up to Retries more
	// attempts, after RetryDelay doubling up to RetryMaxDelay (with jitter).
	Retry           Codes
	Retries         int
	RetryDelay      time.Duration
	RetryMaxDelay   time.Duration
	HaltAfter       int
	ExpectedRuntime time.Duration
	Timeout         time.Duration
	KillAfter       time.Duration
	GateFailOpen    bool

	Env    []string // the helper's own environment: the command's base (os.Environ())
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Credential is the user a job's command runs as.
type Credential struct {
	UID, GID       uint32
	Groups         []uint32
	Name, Home     string
	SelfExecutable string // this binary, for the execshim
}

// FleetConfig is a tick's part in fleet coordination (package fleet).
type FleetConfig struct {
	DSNFile   string        // the tick role's DSN (never on a command line)
	Timeout   time.Duration // connecting and each query
	Insecure  bool          // accept a DSN below sslmode=verify-full
	MaxSkew   time.Duration // fail when this host's clock is further from the database's
	LeaseTTL  time.Duration // a fleet lock's lease (fleet.DefaultLeaseTTL)
	LockScope bool          // the lock group is held fleet-wide too
	Host      string        // this host's name, for holders and messages
	// Singleton makes the job a floating singleton: each slot of the
	// schedule (Config.Schedule) runs on one host of the fleet.
	Singleton bool
}

// Validate checks the rules between a Config's fields that no one flag can
// check alone; the command line parses each flag, then asks this. Each
// error names the job and the flag.
func (c *Config) Validate() error {
	if err := state.ValidName("job", c.Job); err != nil {
		return err
	}
	job := c.Job
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return fmt.Errorf("job %s: empty command after --", job)
	}
	if err := state.ValidName("lock", c.Lock); err != nil {
		return fmt.Errorf("job %s: --lock: %v", job, err)
	}
	if c.EnvFile != "" && !filepath.IsAbs(c.EnvFile) {
		return fmt.Errorf("job %s: --env-file: %q is not an absolute path", job, c.EnvFile)
	}
	if c.HaltAfter < 0 {
		return fmt.Errorf("job %s: --halt-after: %d is negative", job, c.HaltAfter)
	}
	if c.Retries < 0 {
		return fmt.Errorf("job %s: --retries: %d is negative", job, c.Retries)
	}
	if (c.Retries > 0) != (len(c.Retry) > 0) {
		return fmt.Errorf("job %s: --retries and --retry-codes go together (a retry needs both: which codes, how many times)", job)
	}
	for code := range c.Retry {
		for _, o := range []struct {
			flag  string
			codes Codes
		}{{"--ok-codes", c.OK}, {"--done-codes", c.Done}, {"--halt-codes", c.Halt}} {
			if o.codes[code] {
				return fmt.Errorf("job %s: exit code %d is in both --retry-codes and %s", job, code, o.flag)
			}
		}
	}
	for code := range c.OK {
		if c.Done[code] || c.Halt[code] {
			return fmt.Errorf("job %s: exit code %d is in more than one of --ok-codes, --done-codes, --halt-codes", job, code)
		}
	}
	for code := range c.Done {
		if c.Halt[code] {
			return fmt.Errorf("job %s: exit code %d is in both --done-codes and --halt-codes", job, code)
		}
	}
	if c.History < 1 || c.History > 1000 {
		return fmt.Errorf("job %s: --history: %d is not between 1 and 1000", job, c.History)
	}
	for _, s := range c.Schedule {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("job %s: --schedule: empty calendar expression", job)
		}
	}
	// The schedule names a tick's slot: what these need, and only they.
	var needs []string
	if c.Fleet != nil && c.Fleet.Singleton {
		needs = append(needs, "--singleton fleet")
	}
	if c.StartDeadline > 0 {
		needs = append(needs, "--start-deadline")
	}
	if c.CatchUp {
		needs = append(needs, "--catch-up once")
	}
	if len(needs) > 0 && len(c.Schedule) == 0 {
		return fmt.Errorf("job %s: %s needs the timer's schedule (--schedule EXPR, once per OnCalendar=)", job, strings.Join(needs, " and "))
	}
	if c.LockSlots < 0 || c.LockSlots > lockgroup.MaxSlots {
		return fmt.Errorf("job %s: --lock-slots: %d is not within 1-%d", job, c.LockSlots, lockgroup.MaxSlots)
	}
	if c.CatchUpOnPrecondition && !c.CatchUp {
		return fmt.Errorf("job %s: --catch-up-on precondition needs --catch-up once", job)
	}
	for _, q := range c.Requires {
		if q.Scope == require.Fleet && c.Fleet == nil {
			return fmt.Errorf("job %s: --requires: job %s with scope fleet needs fleet coordination (--fleet)", job, q.Job)
		}
		if q.Job == job {
			return fmt.Errorf("job %s: --requires: a job cannot require its own success", job)
		}
	}
	if c.Fleet != nil && (c.Fleet.LeaseTTL < 6*time.Second || c.Fleet.LeaseTTL > time.Hour) {
		return fmt.Errorf("job %s: --fleet-lease-ttl: %s is not between 6s and 1h", job, c.Fleet.LeaseTTL)
	}
	return nil
}
