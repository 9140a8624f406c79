package shard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/conn"
)

// ErrUnauthorized is returned (wrapped) by FetchGatewayBot when Discord
// refuses the token with HTTP 401.
var ErrUnauthorized = errors.New("the token was refused (HTTP 401 from Discord): check DISCORD_TOKEN")

// GatewayBot is what GET /gateway/bot said.
type GatewayBot struct {
	// URL is the gateway to connect to.
	URL string `json:"url"`
	// Shards is Discord's recommended shard count.
	Shards int `json:"shards"`
	// Limit is the session-start budget and identify concurrency.
	Limit conn.SessionStartLimit `json:"session_start_limit"`
}

type gatewayBotBody struct {
	URL               string `json:"url"`
	Shards            int    `json:"shards"`
	SessionStartLimit struct {
		Total          int     `json:"total"`
		Remaining      int     `json:"remaining"`
		ResetAfter     float64 `json:"reset_after"` // milliseconds
		MaxConcurrency int     `json:"max_concurrency"`
	} `json:"session_start_limit"`
}

// FetchGatewayBot asks Discord (or whatever client's transport points at)
// for the gateway URL, the recommended shard count and the session-start
// budget. The token goes in the Authorization header only; no error
// carries it.
func FetchGatewayBot(ctx context.Context, client *http.Client, token string) (*GatewayBot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discordgo.EndpointGatewayBot, nil)
	if err != nil {
		return nil, fmt.Errorf("GET /gateway/bot: %w", err)
	}
	req.Header.Set("Authorization", "Bot "+token)
	req.Header.Set("User-Agent", "DiscordBot (https://github.com/lifeline-bot/lifeline, 0)")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET /gateway/bot: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET /gateway/bot: read body: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("GET /gateway/bot: %w", ErrUnauthorized)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET /gateway/bot: HTTP %d", resp.StatusCode)
	}
	var b gatewayBotBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("GET /gateway/bot: malformed body: %w", err)
	}
	if b.URL == "" {
		return nil, errors.New("GET /gateway/bot: no url in the answer")
	}
	l := b.SessionStartLimit
	return &GatewayBot{URL: b.URL, Shards: b.Shards, Limit: conn.SessionStartLimit{
		Total: l.Total, Remaining: l.Remaining, MaxConcurrency: l.MaxConcurrency,
		ResetAfter: time.Duration(l.ResetAfter * float64(time.Millisecond)),
	}}, nil
}
