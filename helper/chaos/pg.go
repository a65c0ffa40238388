//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tickgate/tickgate/helper/fleet"
)

// Cluster is one PostgreSQL server of the suite's, in its own directory
// (owned by the postgres account: the server refuses to run as root).
type Cluster struct {
	Name string
	Dir  string
	Port int
	// Env is added to the server's environment (the skewed cluster's
	// libfaketime); Listen are its addresses; Options more -c settings.
	Env     []string
	Listen  []string
	Options []string
	s       *Suite
}

func pgBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) < version(dirs[j]) })
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
}

func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// asPostgres runs a program as the postgres account, with env added.
func asPostgres(env []string, prog string, args ...string) *exec.Cmd {
	argv := append([]string{"-u", "postgres", "--", "env"}, env...)
	argv = append(argv, append([]string{prog}, args...)...)
	return exec.Command("runuser", argv...)
}

func run(c *exec.Cmd) error {
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(c.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newCluster prepares a cluster's directory (initdb unless standby).
func (s *Suite) newCluster(name string, initdb bool) (*Cluster, error) {
	c := &Cluster{Name: name, Dir: filepath.Join(s.Dir, name), Port: freePort(), Listen: []string{"127.0.0.1"}, s: s}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := run(exec.Command("chown", "postgres:", c.Dir)); err != nil {
		return nil, err
	}
	if !initdb {
		return c, nil
	}
	pw := filepath.Join(c.Dir, "pw")
	if err := os.WriteFile(pw, []byte(s.SuperPW+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := run(exec.Command("chown", "postgres:", pw)); err != nil {
		return nil, err
	}
	if err := run(asPostgres(nil, filepath.Join(s.bin, "initdb"), "-D", c.data(), "-U", "postgres", "--pwfile="+pw,
		"--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")); err != nil {
		return nil, err
	}
	hba := "local all all scram-sha-256\n" +
		"hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl replication all 127.0.0.1/32 scram-sha-256\n" +
		"hostssl all all " + netnsSubnet + " scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(c.data(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, err
	}
	return c, run(exec.Command("chown", "postgres:", filepath.Join(c.data(), "pg_hba.conf")))
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

// Start starts the server and waits until it accepts connections.
func (c *Cluster) Start() error {
	opts := []string{
		"-c listen_addresses=" + strings.Join(c.Listen, ","), "-c port=" + strconv.Itoa(c.Port),
		"-c unix_socket_directories=" + c.Dir, "-c fsync=off", "-c ssl=on",
		"-c ssl_cert_file=" + filepath.Join(c.s.Dir, "server.crt"), "-c ssl_key_file=" + filepath.Join(c.s.Dir, "server.key"),
		"-c max_connections=200", "-c wal_level=replica", "-c max_wal_senders=10", "-c wal_keep_size=256MB",
	}
	opts = append(opts, c.Options...)
	return run(asPostgres(c.Env, filepath.Join(c.s.bin, "pg_ctl"), "-D", c.data(), "-l", filepath.Join(c.Dir, "server.log"),
		"-w", "-t", "60", "-o", strings.Join(opts, " "), "start"))
}

// Stop stops it: mode fast (a clean shutdown) or immediate (as a crash).
func (c *Cluster) Stop(mode string) error {
	return run(asPostgres(nil, filepath.Join(c.s.bin, "pg_ctl"), "-D", c.data(), "-m", mode, "-w", "-t", "60", "stop"))
}

// Restart is pg_ctl restart -m fast.
func (c *Cluster) Restart() error {
	if err := c.Stop("fast"); err != nil {
		return err
	}
	return c.Start()
}

// Promote makes a standby the primary and waits until it accepts writes.
func (c *Cluster) Promote() error {
	return run(asPostgres(nil, filepath.Join(c.s.bin, "pg_ctl"), "-D", c.data(), "-w", "-t", "60", "promote"))
}

// stopQuietly is for cleanup: whatever state the server is in.
func (c *Cluster) stopQuietly() {
	_ = c.Stop("immediate")
}

// Addr is its address for a DSN.
func (c *Cluster) Addr() string { return fmt.Sprintf("127.0.0.1:%d", c.Port) }

// DSN is user's DSN for the tickgate database on the given servers
// (several: the first that accepts writes, as a failover-aware client
// names them), with verify-full TLS.
func (s *Suite) DSN(user string, addrs ...string) string {
	pw := s.TickPW
	switch user {
	case "postgres":
		pw = s.SuperPW
	case "tickgate_admin":
		pw = s.AdminPW
	}
	q := "sslmode=verify-full&sslrootcert=" + filepath.Join(s.Dir, "ca.crt")
	if len(addrs) > 1 {
		q += "&target_session_attrs=read-write"
	}
	return fmt.Sprintf("postgresql://%s:%s@%s/tickgate?%s", user, pw, strings.Join(addrs, ","), q)
}

// setUp creates the roles and the database on a new primary and migrates
// the schema, mapping each host to its own login role.
func (s *Suite) setUp(c *Cluster, hosts []string, reg map[string]fleet.Singleton) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	super := strings.Replace(s.DSN("postgres", c.Addr()), "/tickgate?", "/postgres?", 1)
	conn, err := pgx.Connect(ctx, super)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	stmts := []string{
		fmt.Sprintf("CREATE ROLE tickgate_admin LOGIN PASSWORD '%s'", s.AdminPW),
		fmt.Sprintf("CREATE ROLE tickgate_tick LOGIN PASSWORD '%s'", s.TickPW),
		"CREATE DATABASE tickgate OWNER tickgate_admin",
		"REVOKE ALL ON DATABASE tickgate FROM PUBLIC",
		"GRANT CONNECT ON DATABASE tickgate TO tickgate_tick",
	}
	for _, h := range hosts {
		stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE tickgate_tick", hostRole(h), s.TickPW))
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return s.migrate(c.Addr(), hosts, reg)
}

func hostRole(host string) string { return "tickgate_tick_" + strings.ReplaceAll(host, "-", "_") }

// migrate brings the schema at addr to the helper's version and registers
// hosts (each mapped to its own login role) and floating singletons.
func (s *Suite) migrate(addr string, hosts []string, reg map[string]fleet.Singleton) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := fleet.Registration{Hosts: map[string]string{}, Singletons: reg}
	for _, h := range hosts {
		r.Hosts[h] = hostRole(h)
	}
	_, err := fleet.Migrate(ctx, fleet.Options{DSN: s.DSN("tickgate_admin", addr), Timeout: 10 * time.Second}, "tickgate_tick", r)
	return err
}
