//go:build full

package main

// The libraries only the full helper links (fleet coordination, status,
// notifications).
import (
	_ "github.com/coreos/go-systemd/v22/dbus"
	_ "github.com/jackc/pgx/v5"
	_ "net/http"
)
