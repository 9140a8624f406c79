package recovery

import (
	"context"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// ConnPlanner returns a conn.Planner (for conn.Config.Planner) that hands
// every failure of the connection of shard to e: the built-in strategies
// run their attempts through the loop's try, Go and plugin strategies run
// as usual, and when no strategy recovers (ErrExhausted, ErrNoStrategy)
// the connection fails with that error.
func (e *Engine) ConnPlanner(shard int) conn.Planner { return connPlanner{e: e, shard: shard} }

type connPlanner struct {
	e     *Engine
	shard int
}

func (p connPlanner) Plan(ctx context.Context, failure events.Error, try func(context.Context, conn.RecoverMode) error) error {
	_, err := p.e.Handle(ctx, Failure{Error: policy.ErrorFromEvent(failure), Shard: p.shard,
		Conn: ConnectionFunc(func(ctx context.Context, mode conn.RecoverMode, _ string) error { return try(ctx, mode) })})
	return err
}
