package recovery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
)

// ErrConnectionStopped is returned (wrapped) by ConnAdapter.Recover when
// the connection stopped for good (FAILED or STOPPED) before the recovery
// it asked for completed.
var ErrConnectionStopped = errors.New("connection stopped")

// Requester is the part of core/conn's *Connection that ConnAdapter uses:
// a fire-and-forget Recover whose outcome shows as RECOVERY_* events with
// the cause as Trigger, and the connection's end.
type Requester interface {
	Recover(mode conn.RecoverMode, cause string) error
	Done() <-chan struct{}
	Err() error
}

// ConnAdapter makes a core/conn Connection the blocking Connection the
// built-in strategies drive. Recover asks the connection to recover with a
// cause made unique, then waits for the connection's own
// RECOVERY_COMPLETED event whose Trigger is that cause: success when it
// reports READY, the event's error otherwise. Feed it the connection's
// events with bus.Subscribe(events.RecoveryCompleted, adapter.Observe);
// an event the bus drops leaves Recover waiting until its context ends
// (the Engine's AttemptTimeout).
//
// What core/conn does with the request limits what the adapter can do:
//
//   - core/conn's loop also recovers by itself, so a request made after a
//     failure ends the connection the loop has already brought back and
//     recovers again: the ledger shows one more RESUME (or IDENTIFY);
//   - a request made while the loop waits out a backoff is taken only when
//     the next connection ends, so Recover waits until its context ends;
//   - the connection publishes RECOVERY_* events of its own for the
//     attempt (Trigger: the cause with its number) besides the Engine's
//     (Trigger: the failure).
//
// A resume asked for when the connection has no session left (it never
// became READY, or Discord invalidated it) ends in a new IDENTIFY; it still
// counts as a success once the connection is READY.
type ConnAdapter struct {
	c Requester

	mu      sync.Mutex
	waiting map[string]chan events.Recovery
}

// causeSeq numbers the causes of every ConnAdapter in the process, so two
// adapters on one bus never wait for the same Trigger.
var causeSeq atomic.Uint64

// NewConnAdapter returns an adapter for c.
func NewConnAdapter(c Requester) *ConnAdapter {
	return &ConnAdapter{c: c, waiting: map[string]chan events.Recovery{}}
}

// Observe takes one of the connection's events; it is an events.Listener.
// Only RECOVERY_COMPLETED events matter.
func (a *ConnAdapter) Observe(ev events.Event) {
	d, ok := ev.Data.(events.Recovery)
	if !ok || !d.Completed {
		return
	}
	a.mu.Lock()
	ch := a.waiting[d.Trigger]
	delete(a.waiting, d.Trigger)
	a.mu.Unlock()
	if ch != nil {
		ch <- d // buffered; each channel receives at most once
	}
}

// Recover implements Connection.
func (a *ConnAdapter) Recover(ctx context.Context, mode conn.RecoverMode, cause string) error {
	tag := fmt.Sprintf("%s [#%d]", cause, causeSeq.Add(1))
	ch := make(chan events.Recovery, 1)
	a.mu.Lock()
	a.waiting[tag] = ch
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.waiting, tag)
		a.mu.Unlock()
	}()

	if err := a.c.Recover(mode, tag); err != nil {
		return fmt.Errorf("recovery: %s: %w", mode, err)
	}
	select {
	case d := <-ch:
		if d.Success {
			return nil
		}
		return fmt.Errorf("recovery: %s: the connection's %s attempt failed: %s", mode, d.Strategy, d.Error)
	case <-a.c.Done():
		if err := a.c.Err(); err != nil {
			return fmt.Errorf("recovery: %s: %w: %w", mode, ErrConnectionStopped, err)
		}
		return fmt.Errorf("recovery: %s: %w", mode, ErrConnectionStopped)
	case <-ctx.Done():
		return fmt.Errorf("recovery: %s: no outcome from the connection: %w", mode, context.Cause(ctx))
	}
}
