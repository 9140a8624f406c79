package recovery

import (
	"context"
	"fmt"

	"github.com/lifeline-bot/lifeline/core/conn"
)

// Connection is what the built-in strategies drive: one managed gateway
// connection (one shard). Recover ends the current connection, starts the
// next one as mode says, and returns nil once that one is READY (or
// RESUMED), or the error that stopped it, or ctx's error.
//
// core/conn's *Connection has a fire-and-forget Recover(mode, cause)
// that reports its outcome as RECOVERY_* events; ConnAdapter turns it into
// this blocking form.
type Connection interface {
	Recover(ctx context.Context, mode conn.RecoverMode, cause string) error
}

// ConnectionFunc adapts a function to Connection.
type ConnectionFunc func(ctx context.Context, mode conn.RecoverMode, cause string) error

// Recover calls f(ctx, mode, cause).
func (f ConnectionFunc) Recover(ctx context.Context, mode conn.RecoverMode, cause string) error {
	return f(ctx, mode, cause)
}

// ClientRestarter is implemented by a Connection that can replace its whole
// client (for core/conn: stop the Connection and start a new one with a new
// discordgo Session), the restart_client strategy. RestartClient returns
// nil once the new client is READY.
type ClientRestarter interface {
	RestartClient(ctx context.Context, cause string) error
}

// builtin is one of the connection loop's recovery modes as a strategy.
type builtin struct {
	name string
	mode conn.RecoverMode // 0 for restart_client
}

// Builtins returns the built-in strategies' Recoverers by name: resume,
// reconnect, reidentify and restart_client. Each drives the Attempt's
// Failure.Conn and is unavailable (ErrUnavailable) without one;
// restart_client also needs that Connection to be a ClientRestarter.
// Every Engine has them registered; Register can replace one.
func Builtins() map[string]Recoverer {
	return map[string]Recoverer{
		Resume:        builtin{Resume, conn.RecoverResume},
		Reconnect:     builtin{Reconnect, conn.RecoverReconnect},
		Reidentify:    builtin{Reidentify, conn.RecoverReidentify},
		RestartClient: builtin{RestartClient, 0},
	}
}

// Available implements Availability.
func (b builtin) Available(f Failure) error {
	if f.Conn == nil {
		return fmt.Errorf("recovery: %s: no connection to drive (set Settings.Connection or Failure.Conn): %w", b.name, ErrUnavailable)
	}
	if b.mode == 0 {
		if _, ok := f.Conn.(ClientRestarter); !ok {
			return fmt.Errorf("recovery: %s: the connection (%T) cannot restart its client: %w", b.name, f.Conn, ErrUnavailable)
		}
	}
	return nil
}

// Recover implements Recoverer.
func (b builtin) Recover(ctx context.Context, a Attempt) error {
	if err := b.Available(a.Failure); err != nil {
		return err
	}
	if b.mode == 0 {
		return a.Failure.Conn.(ClientRestarter).RestartClient(ctx, a.Cause())
	}
	return a.Failure.Conn.Recover(ctx, b.mode, a.Cause())
}
