//go:build chaos

// Package chaos is tickgate's fault-injection suite for fleet coordination
// (make chaos; a short run in make test). It starts real PostgreSQL
// clusters (a primary, synchronous and asynchronous standbys, a clock-skewed
// one, PgBouncer in front) from Debian's packages in a temporary directory,
// runs the built helper as several hosts, injects one fault per scenario,
// and checks the history of what ran:
//
//   - every run of a fleet lock group, from its command's start to the
//     moment its whole process tree was gone, and no two of one group
//     overlapping (where the docs promise it);
//   - each slot of a floating singleton run at most once;
//   - liveness: how long after a holder died or was cut off another host
//     could run (the lease's bound plus a margin);
//   - no write with a stale fence accepted by a fenced resource.
//
// What systemd does for a unit is done here by a small emulation (unit.go),
// the two behaviours the guarantees lean on and molecule/fleet checks on a
// real systemd: when a unit's main process dies, the rest of its cgroup is
// killed; and WatchdogSec= with WatchdogSignal=SIGKILL kills the cgroup
// when the helper stops feeding the watchdog. Each host's ticks run in
// their own cgroup v2 group; a partitioned host's in a network namespace
// the suite creates, where the partition's firewall rule lives (never on
// the machine's own rules).
//
// It needs root, cgroup v2 (at /sys/fs/cgroup or /sys/fs/cgroup/unified),
// iproute2, iptables, pgbouncer and faketime (make deps installs them).
package chaos
