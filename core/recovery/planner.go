package recovery

import (
	"context"
	"errors"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// ConnPlanner returns a conn.Planner (for conn.Config.Planner) that hands
// every failure of the connection of shard to e: the built-in strategies
// run their attempts through the loop's try, Go and plugin strategies run
// as usual. When no strategy recovers (ErrExhausted, ErrNoStrategy) the
// failure goes back to the connection loop's own choice, which keeps
// trying with its backoff until max_reconnect_attempts: running out of
// policy strategies during a long outage must not end the connection.
func (e *Engine) ConnPlanner(shard int) conn.Planner { return connPlanner{e: e, shard: shard} }

type connPlanner struct {
	e     *Engine
	shard int
}

func (p connPlanner) Plan(ctx context.Context, failure events.Error, try func(context.Context, conn.RecoverMode) error) error {
	_, err := p.e.Handle(ctx, Failure{Error: policy.ErrorFromEvent(failure), Shard: p.shard,
		Conn: ConnectionFunc(func(ctx context.Context, mode conn.RecoverMode, _ string) error { return try(ctx, mode) })})
	if errors.Is(err, ErrExhausted) || errors.Is(err, ErrNoStrategy) || ctx.Err() != nil {
		return nil // the loop's own backoff takes over
	}
	return err
}
