package conn

import "context"

// ReconnectGate admits a shard's connection attempts after the first: the
// shard manager (core/shard) shares one between its shards so that, when
// many shards drop at once, their reconnects are spread over time instead
// of hitting the gateway in the same instant, and RESUMEs go before new
// IDENTIFYs. The first connection of Start never waits at the gate (the
// identify queue paces it); every later attempt does, after the backoff
// wait the connection loop chose. RESUMEs and IDENTIFYs alike pass it;
// an IDENTIFY then still waits in the IdentifyQueue.
type ReconnectGate interface {
	// Wait blocks until shard may dial again. resume says whether the
	// attempt will RESUME (true) or IDENTIFY a new session (false).
	// It returns nil when the attempt may go ahead, or ctx's error when
	// ctx ends first (the connection is stopping). Any other error is
	// logged and the attempt goes ahead: a gate never stops recovery.
	Wait(ctx context.Context, shard int, resume bool) error
}
