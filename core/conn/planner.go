package conn

import (
	"context"
	"errors"
	"fmt"

	"github.com/lifeline-bot/lifeline/core/events"
)

// Planner chooses how a Connection recovers from a failure; core/recovery's
// Engine is one (recovery.ConnPlanner).
type Planner interface {
	// Plan is called on a goroutine of its own once per failure (a
	// connection that ended with an error that is not fatal), with the
	// data of the ERROR_OCCURRED event the loop published. It recovers by
	// calling try, once per attempt: try runs one connection attempt in
	// mode and returns nil once that connection is READY (or RESUMED), or
	// how it ended. Plan returns nil after a successful try, or the error
	// that ends the Connection (FAILED). Returning nil without a
	// successful try hands the failure back to the loop's own choice.
	// ctx ends when the Connection stops.
	Plan(ctx context.Context, failure events.Error, try func(ctx context.Context, mode RecoverMode) error) error
}

// errStopped is try's error when the connection stopped for good.
var errStopped = errors.New("conn: connection stopped")

// tryRequest is one attempt a Planner asked for.
type tryRequest struct {
	mode    RecoverMode
	reply   chan error // buffered: the loop never blocks on it
	started func()     // from WithTryNotice; nil when there is none
}

// tryNoticeKey is WithTryNotice's context key.
type tryNoticeKey struct{}

type tryNotice struct{ queued, started func() }

// WithTryNotice returns a context for a Planner's try that reports the two
// phases of the attempt: queued when try hands the attempt to the
// connection loop, which may first wait out its backoff (at most
// MaxReconnectDelay), and started when the loop begins it. Whoever bounds
// a try with a deadline (core/recovery's AttemptTimeout) uses it to leave
// the backoff out: otherwise a backoff longer than the deadline fails
// every attempt before it has begun. Either function may be nil.
func WithTryNotice(ctx context.Context, queued, started func()) context.Context {
	return context.WithValue(ctx, tryNoticeKey{}, tryNotice{queued: queued, started: started})
}

// planRun is a Plan in progress.
type planRun struct {
	done      chan error
	succeeded bool // a try reached READY
}

// try hands one attempt to the loop and waits for its outcome.
func (c *Connection) try(ctx context.Context, mode RecoverMode) error {
	req := tryRequest{mode: mode, reply: make(chan error, 1)}
	if n, ok := ctx.Value(tryNoticeKey{}).(tryNotice); ok {
		if n.queued != nil {
			n.queued()
		}
		req.started = n.started
	}
	select {
	case c.tries <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return errStopped
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		if err := c.Err(); err != nil {
			return fmt.Errorf("%w: %w", errStopped, err)
		}
		return errStopped
	}
}

// awaitPlan starts a Plan for failure unless one is running, and waits for
// its next try (returned) or its end. It returns (nil, nil) when ctx ended
// or the Plan handed the failure back, and an error when the Plan gave up.
func (c *Connection) awaitPlan(ctx context.Context, run **planRun, failure events.Error) (*tryRequest, error) {
	if *run != nil && (*run).succeeded {
		// The last Plan recovered; that connection has ended since. Its
		// result no longer matters.
		<-(*run).done
		*run = nil
	}
	if *run == nil {
		r := &planRun{done: make(chan error, 1)}
		*run = r
		c.downstream.Add(1)
		go func() {
			defer c.downstream.Done()
			r.done <- c.cfg.Planner.Plan(ctx, failure, c.try)
		}()
	}
	c.setState(Reconnecting, "recovery planner: "+failure.Message)
	select {
	case req := <-c.tries:
		return &req, nil
	case err := <-(*run).done:
		*run = nil
		if err != nil {
			return nil, fmt.Errorf("conn: recovery planner gave up: %w", err)
		}
		return nil, nil
	case <-ctx.Done():
		return nil, nil
	}
}
