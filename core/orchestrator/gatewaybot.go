package orchestrator

import "github.com/lifeline-bot/lifeline/core/shard"

// GatewayBot is what GET /gateway/bot said (core/shard asks for it).
type GatewayBot = shard.GatewayBot

// ErrUnauthorized is returned (wrapped) by Start when Discord refuses the
// token (HTTP 401 on /gateway/bot).
var ErrUnauthorized = shard.ErrUnauthorized
