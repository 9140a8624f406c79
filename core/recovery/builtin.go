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

// builtin is one of the connection loop's recovery modes as a strategy.
type builtin struct {
	name string
	mode conn.RecoverMode
}

// Builtins returns the built-in strategies' Recoverers by name, each the
// connection loop's recovery mode of the same name: resume
// (conn.RecoverResume), reconnect (RecoverReconnect), reidentify
// (RecoverReidentify) and restart_client (RecoverRestart). Each drives the
// Attempt's Failure.Conn and is unavailable (ErrUnavailable) without one.
// Every Engine has them registered; Register can replace one.
func Builtins() map[string]Recoverer {
	return map[string]Recoverer{
		Resume:        builtin{Resume, conn.RecoverResume},
		Reconnect:     builtin{Reconnect, conn.RecoverReconnect},
		Reidentify:    builtin{Reidentify, conn.RecoverReidentify},
		RestartClient: builtin{RestartClient, conn.RecoverRestart},
	}
}

// Available implements Availability.
func (b builtin) Available(f Failure) error {
	if f.Conn == nil {
		return fmt.Errorf("recovery: %s: no connection to drive (set Settings.Connection or Failure.Conn): %w", b.name, ErrUnavailable)
	}
	return nil
}

// Recover implements Recoverer.
func (b builtin) Recover(ctx context.Context, a Attempt) error {
	if err := b.Available(a.Failure); err != nil {
		return err
	}
	return a.Failure.Conn.Recover(ctx, b.mode, a.Cause())
}
