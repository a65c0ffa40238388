//go:build chaos

package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Bouncer is a PgBouncer (Debian's) in front of a cluster, with TLS on
// both sides (the helper's verify-full to it, its verify-full to the
// server), each host's login role in its auth file.
type Bouncer struct {
	Dir  string
	Port int
	cmd  *exec.Cmd
}

func (s *Suite) startBouncer(name, mode string, c *Cluster, hosts []string) (*Bouncer, error) {
	b := &Bouncer{Dir: filepath.Join(s.Dir, name), Port: freePort()}
	if err := os.MkdirAll(b.Dir, 0o755); err != nil {
		return nil, err
	}
	var users strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&users, "%q %q\n", hostRole(h), s.TickPW)
	}
	ini := fmt.Sprintf(`[databases]
tickgate = host=127.0.0.1 port=%d dbname=tickgate

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir = %[3]s
auth_type = scram-sha-256
auth_file = %[3]s/userlist.txt
pool_mode = %[4]s
max_client_conn = 500
default_pool_size = 4
client_tls_sslmode = require
client_tls_key_file = %[5]s/server.key
client_tls_cert_file = %[5]s/server.crt
client_tls_ca_file = %[5]s/ca.crt
server_tls_sslmode = verify-full
server_tls_ca_file = %[5]s/ca.crt
logfile = %[3]s/pgbouncer.log
pidfile = %[3]s/pgbouncer.pid
`, c.Port, b.Port, b.Dir, mode, s.Dir)
	for f, content := range map[string]string{"pgbouncer.ini": ini, "userlist.txt": users.String()} {
		if err := os.WriteFile(filepath.Join(b.Dir, f), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	if err := run(exec.Command("chown", "-R", "postgres:", b.Dir)); err != nil {
		return nil, err
	}
	b.cmd = asPostgres(nil, "pgbouncer", filepath.Join(b.Dir, "pgbouncer.ini"))
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port)); err == nil {
			conn.Close()
			return b, nil
		}
	}
	b.Stop()
	log, _ := os.ReadFile(filepath.Join(b.Dir, "pgbouncer.log"))
	return nil, fmt.Errorf("pgbouncer did not start: %s", log)
}

// Stop ends it.
func (b *Bouncer) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		_ = exec.Command("pkill", "-TERM", "-F", filepath.Join(b.Dir, "pgbouncer.pid")).Run()
		_ = b.cmd.Process.Kill() // runuser's; pgbouncer itself got the TERM
		_ = b.cmd.Wait()
	}
}

// Addr is its address for a DSN.
func (b *Bouncer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }
