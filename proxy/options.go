package proxy

import (
	"log/slog"
	"time"
)

// Options configure a Server. The zero value of every field is usable.
type Options struct {
	// Password, when set, must be given by every session (AUTH <password>
	// or HELLO 3 AUTH default <password>) before any other command. These
	// are the proxy's own credentials; the backend's are client.Options'.
	Password string
	// Users are further named users for AUTH <user> <password>, name to
	// password. Setting any user requires authentication as for Password.
	Users map[string]string

	// MaxClients bounds concurrent sessions; one more is told
	// "-ERR max number of clients reached" and closed, as redis-server does.
	// Default 10000 (redis-server's maxclients).
	MaxClients int
	// WriteTimeout disconnects a session whose client accepts none of its
	// replies for this long: a client that never reads cannot hold the
	// proxy's memory (a session keeps at most one batch of replies), and
	// the stall is its own. Default 30s.
	WriteTimeout time.Duration
	// MaxPipeline bounds how many pipelined requests a session reads ahead
	// and sends as one batch. Default 1024.
	MaxPipeline int

	// Idempotent marks every command as safe to run twice (see
	// client.Idempotent): a write in flight when its master died is then
	// retried on the promoted replica instead of reported as an error.
	// Only for applications whose writes are idempotent (SET, HSET, DEL).
	Idempotent bool

	// Version is the server version HELLO reports. Default "7.0.0".
	Version string
	// Logger receives session failures and limits hit. Default: discard.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.MaxClients <= 0 {
		o.MaxClients = 10000
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxPipeline <= 0 {
		o.MaxPipeline = 1024
	}
	if o.Version == "" {
		o.Version = "7.0.0"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// authRequired reports whether sessions start unauthenticated.
func (o *Options) authRequired() bool { return o.Password != "" || len(o.Users) > 0 }
