package config

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment is where a bot runs: development, staging or production.
type Environment string

// The environments Recommend knows.
const (
	Development Environment = "development"
	Staging     Environment = "staging"
	Production  Environment = "production"
)

// ErrUnknownEnvironment is returned by ParseEnvironment and Recommend
// when the environment is not development, staging or production.
var ErrUnknownEnvironment = errors.New("unknown environment")

// ErrGuilds is returned by Recommend when the guild count is negative or
// needs more shards than Discord allows.
var ErrGuilds = errors.New("invalid guild count")

// ParseEnvironment accepts "development" ("dev"), "staging" ("stage") or
// "production" ("prod"), in any case.
func ParseEnvironment(s string) (Environment, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "development", "dev":
		return Development, nil
	case "staging", "stage":
		return Staging, nil
	case "production", "prod":
		return Production, nil
	}
	return "", fmt.Errorf("config: %w %q (development, staging or production)", ErrUnknownEnvironment, s)
}

// Figures behind the recommendations.
const (
	// Preset bounds by guild count, as issue 5 defines the presets:
	// small < 100, medium 100-1,000, large > 1,000 (sharded).
	mediumFromGuilds = 100
	largeAboveGuilds = 1000

	// shardingRequiredGuilds: Discord refuses a shard holding more than
	// 2,500 guilds (close code 4011, "sharding required"; Discord
	// developer docs, Gateway > Sharding, and
	// shared/reference/discord-protocol.md).
	shardingRequiredGuilds = 2500
	// guildsPerShard: GET /gateway/bot recommends about one shard per
	// 1,000 guilds (Discord developer docs, Get Gateway Bot), which
	// leaves each shard room to grow 2.5 times before the 2,500 limit.
	guildsPerShard = 1000
	// largeBotGuilds and largeBotShardMultiple: Discord moves bots above
	// 150,000 guilds to "large bot sharding", with max_concurrency 16 and
	// shard counts that must be a multiple of it (Discord developer docs,
	// Sharding for Large Bots; /gateway/bot reports the real value).
	largeBotGuilds        = 150000
	largeBotShardMultiple = 16
	// maxShards is the most core/policy accepts (shards = 1..65535).
	maxShards = 65535
	// dailyIdentifies is session_start_limit.total for most bots: 1,000
	// IDENTIFYs per 24 h across all shards (Discord developer docs, Get
	// Gateway Bot; the reference's typical {1000, 999, 14400000, 1}).
	dailyIdentifies = 1000
	// identifyWindow: with max_concurrency 1, one IDENTIFY per 5 s.
	identifyWindow = 5 * time.Second
	// verificationGuilds: Discord requires verification from 100 servers,
	// and verified bots need approval for privileged intents (Discord
	// developer docs, Privileged Intents).
	verificationGuilds = 100
)

// Reason is one recommended value and why.
type Reason struct {
	// Setting is the setting's key, or "" for advice that changes no
	// value.
	Setting string
	// Value is the recommended value as written in a policy.
	Value string
	// Why explains the choice, with the figures it rests on.
	Why string
}

// Recommendation is a policy for an environment and guild count.
type Recommendation struct {
	// Environment and Guilds are the inputs.
	Environment Environment
	Guilds      int
	// Preset is the preset the policy starts from.
	Preset string
	// Shards is the recommended shard count (the preset's when Recommend
	// sets none); 0 means auto.
	Shards int
	// Reasons are the recommended values and advice, in policy order.
	Reasons []Reason
	// Config is the recommended configuration, loaded and validated.
	Config *Config
	// Policy is Config as a policy file, with the reasons as comments.
	Policy []byte
}

// Recommend returns a policy for a bot in guilds servers running in env:
// the preset for its size, the shard count Discord's limits call for,
// and settings suited to the environment, each with its reason.
func Recommend(env Environment, guilds int) (*Recommendation, error) {
	switch env {
	case Development, Staging, Production:
	default:
		return nil, fmt.Errorf("config: %w %q (development, staging or production)", ErrUnknownEnvironment, env)
	}
	if guilds < 0 {
		return nil, fmt.Errorf("config: %w: %d is negative", ErrGuilds, guilds)
	}
	r := &Recommendation{Environment: env, Guilds: guilds}
	var opts []Option
	set := func(key string, value any, why string) {
		s, _ := LookupSetting(key)
		v, err := s.goValue(value)
		text := fmt.Sprint(value)
		if err == nil {
			text = exprText(v)
		}
		r.Reasons = append(r.Reasons, Reason{Setting: key, Value: text, Why: why})
		opts = append(opts, Set(key, value))
	}
	advise := func(why string) { r.Reasons = append(r.Reasons, Reason{Why: why}) }

	switch {
	case guilds < mediumFromGuilds:
		r.Preset = "small"
	case guilds <= largeAboveGuilds:
		r.Preset = "medium"
	default:
		r.Preset = "large"
	}
	advise(fmt.Sprintf("Preset %s: %s guilds is %s.", r.Preset, thousands(guilds), map[string]string{
		"small": "fewer than 100", "medium": "between 100 and 1,000", "large": "more than 1,000"}[r.Preset]))

	// Shards.
	switch {
	case guilds >= shardingRequiredGuilds:
		n := (guilds + guildsPerShard - 1) / guildsPerShard
		why := fmt.Sprintf("Discord requires sharding from %s guilds (close code 4011) and recommends about %s guilds per shard: ceil(%s / %s) = %d, room to grow to %s guilds before a shard reaches the limit.",
			thousands(shardingRequiredGuilds), thousands(guildsPerShard), thousands(guilds), thousands(guildsPerShard), n, thousands(n*shardingRequiredGuilds))
		if guilds > largeBotGuilds {
			m := (n + largeBotShardMultiple - 1) / largeBotShardMultiple * largeBotShardMultiple
			why += fmt.Sprintf(" Above %s guilds Discord uses large bot sharding: shard counts must be a multiple of max_concurrency (16 for most such bots; check GET /gateway/bot), so %d.",
				thousands(largeBotGuilds), m)
			n = m
		}
		if n > maxShards {
			return nil, fmt.Errorf("config: %w: %s guilds need %d shards, more than %d", ErrGuilds, thousands(guilds), n, maxShards)
		}
		set("connection.shards", n, why)
		starts := dailyIdentifies / n
		advise(fmt.Sprintf("A cold start of %d shards spends %d of the %s daily IDENTIFYs (%d full restarts a day exhaust them) and, at max_concurrency 1, takes about %s (one IDENTIFY per %s): recover by RESUME wherever possible.",
			n, n, thousands(dailyIdentifies), starts, FormatDuration(time.Duration(n)*identifyWindow), FormatDuration(identifyWindow)))
	case env == Development:
		set("connection.shards", 1, fmt.Sprintf("A development bot runs one shard: Discord requires sharding only from %s guilds.", thousands(shardingRequiredGuilds)))
	}

	// Environment.
	switch env {
	case Development:
		set("connection.max_reconnect_attempts", 3, "Fail fast while developing: a bad token, intent or network shows within seconds instead of after an hour of retries.")
		set("connection.reconnect_delay", time.Second, "Retry at once while developing; three quick attempts cost three IDENTIFYs at most.")
		set("health.interval", 10*time.Second, "See health changes while you test.")
		set("health.timeout", 5*time.Second, "Shorter than the 10s interval, as it must be.")
		set("circuit_breaker.open_timeout", 10*time.Second, "Probe again soon after a local dependency restarts.")
		set("degradation.recovery_delay", 5*time.Second, "Step down quickly so an outage can be rehearsed again at once (lifeline demo, the fake Discord).")
	case Staging:
		advise("Staging mirrors production so that what is tested is what runs; only the reconnect limit differs.")
		set("connection.max_reconnect_attempts", 20, "A broken staging deploy should stop and say so rather than retry forever; 20 attempts with capped backoff still ride out a Discord incident of an hour or so.")
	case Production:
		set("connection.max_reconnect_attempts", 0, "In production a person, not a counter, decides the bot is down: reconnect without limit (the delay stays capped at max_reconnect_delay) and alert on lifeline's reconnect metrics instead.")
	}
	if guilds >= verificationGuilds || env == Production {
		advise(fmt.Sprintf("Intents: the preset asks for no privileged intent. GuildMembers, GuildPresences and MessageContent must be enabled in the Developer Portal (else close code 4014), and need Discord's approval once the bot is verified, which Discord requires from %d servers.", verificationGuilds))
	}

	cfg, err := Load(append([]Option{WithPreset(r.Preset), WithEnv(nil)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("config: recommendation does not load (a bug): %w", err)
	}
	r.Config = cfg
	r.Shards = cfg.Policy.Connection.Shards
	r.Policy = r.render()
	return r, nil
}

// render writes the policy with the reasons: all of them in the header,
// and a pointer to its reason next to each recommended value.
func (r *Recommendation) render() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# lifeline policy recommended for %s, %s guilds (lifeline config recommend).\n", r.Environment, thousands(r.Guilds))
	p, _ := LookupPreset(r.Preset)
	fmt.Fprintf(&b, "# Base: preset %s (%s)\n#\n# Why:\n", r.Preset, strings.TrimSuffix(p.Summary, "."))
	num := map[string]int{}
	for i, rs := range r.Reasons {
		text := rs.Why
		if rs.Setting != "" {
			num[rs.Setting] = i + 1
			text = rs.Setting + " = " + rs.Value + ": " + text
		}
		for j, line := range wrap(text, 96) {
			prefix := fmt.Sprintf("# %2d. ", i+1)
			if j > 0 {
				prefix = "#     "
			}
			b.WriteString(prefix + line + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(tree(r.Config.Policy).hcl(func(key string) string {
		if n, ok := num[key]; ok {
			return fmt.Sprintf("recommended (%d)", n)
		}
		if s, ok := r.Config.sources[key]; ok && s.Kind == SourcePreset {
			return "preset " + s.Name
		}
		if s, ok := r.Config.sources[key]; ok {
			return s.String()
		}
		return ""
	}))
	return b.Bytes()
}

// wrap breaks text into lines of at most width bytes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(text) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// thousands formats n with commas: 12000 -> "12,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
