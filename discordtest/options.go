package discordtest

import (
	"fmt"
	"math"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/lifeline-bot/lifeline/core/clock"
)

// Discord's own values, used as defaults (divided by Options.Scale).
const (
	DefaultHeartbeatInterval    = 41250 * time.Millisecond
	DefaultIdentifyWindow       = 5 * time.Second
	DefaultSessionExpiry        = 2 * time.Minute
	DefaultSessionStartReset    = 24 * time.Hour
	DefaultSendLimitWindow      = 60 * time.Second
	DefaultRESTBucketWindow     = 5 * time.Second
	DefaultGlobalWindow         = time.Second
	DefaultInvalidRequestWindow = 10 * time.Minute
	DefaultBanDuration          = time.Hour

	DefaultToken                = "discordtest-token"
	DefaultSendLimit            = 120
	DefaultSessionStartTotal    = 1000
	DefaultMaxConcurrency       = 1
	DefaultMaxGuildsPerShard    = 2500
	DefaultRESTBucketLimit      = 5
	DefaultGlobalLimit          = 50
	DefaultInvalidRequestLimit  = 10000
	DefaultReplayBuffer         = 1000
	DefaultGuilds               = 2
	DefaultAddr                 = "127.0.0.1:0"
	defaultBotUserID            = "1000000000000000001"
	defaultBotUsername          = "discordtest-bot"
	defaultGuildsPerRecommended = 1000
)

// Options configures a Server. The zero value is valid: a bot with token
// DefaultToken in DefaultGuilds guilds on a random 127.0.0.1 port, with
// Discord's real timings. Every duration left zero takes Discord's value
// divided by Scale; a duration set explicitly is used as given.
type Options struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0" (a random
	// port). Only loopback addresses are accepted unless AllowNonLoopback is
	// set.
	Addr string
	// AllowNonLoopback lets Addr name a non-loopback interface. Default
	// false: the fake refuses to listen beyond this machine.
	AllowNonLoopback bool

	// Token is the bot token the fake accepts (REST as "Bot <token>", the
	// gateway with or without the "Bot " prefix). Default DefaultToken.
	Token string
	// BotUserID and BotUsername describe the bot's user. Defaults
	// "1000000000000000001" and "discordtest-bot".
	BotUserID   string
	BotUsername string

	// Clock is the time source for every timer, window and timestamp.
	// Default clock.Real. Network I/O deadlines always use the wall clock.
	Clock clock.Clock
	// Logger receives the fake's diagnostics (never the token). Default: a
	// null logger.
	Logger hclog.Logger
	// Seed seeds the pseudo-random choices (which REST requests a
	// fault's error rate hits). Default 1, so runs repeat.
	Seed int64

	// Scale divides every defaulted duration, so Scale 100 turns Discord's
	// 41.25 s heartbeat into 412 ms and its 5 s identify window into 50 ms.
	// Scenario step offsets and durations are divided by it too. Default 1.
	Scale float64

	// HeartbeatInterval is sent in HELLO. Default 41.25 s / Scale. It is
	// sent in whole milliseconds (at least 1), as Discord does.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout is how long a connection may go without a
	// heartbeat before the fake closes it with 4009 and ends its session
	// (Discord's docs do not name the code; 4009 "session timed out" is
	// the one whose meaning fits). Default 2 × HeartbeatInterval; negative
	// disables the check.
	HeartbeatTimeout time.Duration
	// IdentifyWindow is the identify rate-limit window: each bucket
	// (shard_id % MaxConcurrency) may IDENTIFY once per window. Default
	// 5 s / Scale.
	IdentifyWindow time.Duration
	// SessionExpiry is how long a disconnected session stays resumable.
	// Default 2 min / Scale (Discord says "a few minutes").
	SessionExpiry time.Duration
	// SessionStartReset is the session-start budget's period (the
	// reset_after of /gateway/bot). Default 24 h / Scale.
	SessionStartReset time.Duration
	// SendLimitWindow and SendLimit: a connection may send SendLimit frames
	// per SendLimitWindow (sliding); one more closes it with 4008.
	// Defaults 60 s / Scale and 120.
	SendLimitWindow time.Duration
	SendLimit       int

	// SessionStartTotal is the session-start budget (IDENTIFYs per
	// SessionStartReset). Default 1000. Exceeding it does what Discord
	// does: every session ends and the token stops working (4004 on the
	// gateway, 401 on REST) until ResetSessionStartLimit is called.
	SessionStartTotal int
	// MaxConcurrency is session_start_limit.max_concurrency. Default 1.
	MaxConcurrency int
	// Guilds is how many guilds the bot is in. Default DefaultGuilds (2);
	// negative means none.
	Guilds int
	// MaxGuildsPerShard: an IDENTIFY whose shard would hold more guilds
	// closes with 4011. Default 2500.
	MaxGuildsPerShard int
	// RecommendedShards is /gateway/bot's "shards". Default
	// ceil(Guilds / 1000), at least 1.
	RecommendedShards int
	// PrivilegedIntents are the privileged intents enabled for the bot;
	// asking for another one closes with 4014. Default none.
	PrivilegedIntents int64
	// ReplayBuffer is how many dispatches a session keeps for RESUME.
	// Default 1000. A RESUME from before the oldest kept one gets op 9
	// d=false.
	ReplayBuffer int
	// DispatchInterval, when positive, makes every live session receive a
	// MESSAGE_CREATE in one of its guilds at this interval. Default 0
	// (off).
	DispatchInterval time.Duration

	// RESTBucketLimit requests per RESTBucketWindow per route and major
	// parameter. Defaults 5 and 5 s / Scale.
	RESTBucketLimit  int
	RESTBucketWindow time.Duration
	// GlobalLimit requests per GlobalWindow across all routes. Defaults 50
	// and 1 s / Scale.
	GlobalLimit  int
	GlobalWindow time.Duration
	// InvalidRequestLimit invalid requests (401, 403, 429 other than scope
	// shared) per InvalidRequestWindow earn a Cloudflare-style ban of
	// BanDuration. Defaults 10000, 10 min / Scale and 1 h / Scale.
	InvalidRequestLimit  int
	InvalidRequestWindow time.Duration
	BanDuration          time.Duration
}

// config is Options with every default applied.
type config struct {
	Options
}

func scaled(d time.Duration, scale float64) time.Duration {
	s := time.Duration(math.Round(float64(d) / scale))
	if s < time.Millisecond {
		s = time.Millisecond
	}
	return s
}

// resolve applies defaults and checks the options.
func (o Options) resolve() (config, error) {
	c := config{o}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.Token == "" {
		c.Token = DefaultToken
	}
	if c.BotUserID == "" {
		c.BotUserID = defaultBotUserID
	}
	if c.BotUsername == "" {
		c.BotUsername = defaultBotUsername
	}
	c.Clock = clock.Or(c.Clock)
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Scale == 0 {
		c.Scale = 1
	}
	if c.Scale < 0 || math.IsNaN(c.Scale) || math.IsInf(c.Scale, 0) {
		return c, fmt.Errorf("discordtest: options: Scale %v: %w", c.Scale, ErrInvalidOptions)
	}
	durs := []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.HeartbeatInterval, DefaultHeartbeatInterval},
		{&c.IdentifyWindow, DefaultIdentifyWindow},
		{&c.SessionExpiry, DefaultSessionExpiry},
		{&c.SessionStartReset, DefaultSessionStartReset},
		{&c.SendLimitWindow, DefaultSendLimitWindow},
		{&c.RESTBucketWindow, DefaultRESTBucketWindow},
		{&c.GlobalWindow, DefaultGlobalWindow},
		{&c.InvalidRequestWindow, DefaultInvalidRequestWindow},
		{&c.BanDuration, DefaultBanDuration},
	}
	for _, d := range durs {
		if *d.v == 0 {
			*d.v = scaled(d.def, c.Scale)
		}
		if *d.v < 0 {
			return c, fmt.Errorf("discordtest: options: negative duration %v: %w", *d.v, ErrInvalidOptions)
		}
	}
	if c.HeartbeatInterval < time.Millisecond {
		return c, fmt.Errorf("discordtest: options: HeartbeatInterval %v is under 1ms: %w", c.HeartbeatInterval, ErrInvalidOptions)
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 2 * c.HeartbeatInterval
	}
	if c.DispatchInterval < 0 {
		return c, fmt.Errorf("discordtest: options: negative DispatchInterval: %w", ErrInvalidOptions)
	}
	ints := []struct {
		v   *int
		def int
	}{
		{&c.SendLimit, DefaultSendLimit},
		{&c.SessionStartTotal, DefaultSessionStartTotal},
		{&c.MaxConcurrency, DefaultMaxConcurrency},
		{&c.MaxGuildsPerShard, DefaultMaxGuildsPerShard},
		{&c.ReplayBuffer, DefaultReplayBuffer},
		{&c.RESTBucketLimit, DefaultRESTBucketLimit},
		{&c.GlobalLimit, DefaultGlobalLimit},
		{&c.InvalidRequestLimit, DefaultInvalidRequestLimit},
	}
	for _, i := range ints {
		if *i.v == 0 {
			*i.v = i.def
		}
		if *i.v < 0 {
			return c, fmt.Errorf("discordtest: options: negative limit %d: %w", *i.v, ErrInvalidOptions)
		}
	}
	switch {
	case c.Guilds == 0:
		c.Guilds = DefaultGuilds
	case c.Guilds < 0:
		c.Guilds = 0
	}
	if c.RecommendedShards == 0 {
		c.RecommendedShards = (c.Guilds + defaultGuildsPerRecommended - 1) / defaultGuildsPerRecommended
		if c.RecommendedShards < 1 {
			c.RecommendedShards = 1
		}
	}
	if c.PrivilegedIntents&^IntentsPrivileged != 0 {
		return c, fmt.Errorf("discordtest: options: PrivilegedIntents %#x has non-privileged bits: %w", c.PrivilegedIntents, ErrInvalidOptions)
	}
	return c, nil
}
