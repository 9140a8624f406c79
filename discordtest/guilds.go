package discordtest

import (
	"strconv"
	"time"
)

// discordEpochMs is the first millisecond of 2015 in Unix time, the zero
// of Discord's snowflakes.
const discordEpochMs = 1420070400000

// Guild is one guild the fake bot is in. Each guild has one text channel.
type Guild struct {
	ID        string
	Name      string
	ChannelID string
}

// ShardID returns the shard that receives the guild's events when the
// bot runs numShards shards: (guild_id >> 22) % numShards.
func (g Guild) ShardID(numShards int) int {
	return ShardForGuild(g.ID, numShards)
}

// ShardForGuild returns (guildID >> 22) % numShards, Discord's sharding
// formula; -1 when guildID is not a snowflake or numShards < 1.
func ShardForGuild(guildID string, numShards int) int {
	id, err := strconv.ParseUint(guildID, 10, 64)
	if err != nil || numShards < 1 {
		return -1
	}
	return int((id >> 22) % uint64(numShards))
}

// snowflake builds an ID from a millisecond timestamp (since Discord's
// epoch) and an increment.
func snowflake(ms int64, inc int64) string {
	return strconv.FormatUint(uint64(ms)<<22|uint64(inc&0xFFF), 10)
}

// makeGuilds returns n guilds whose snowflake timestamps differ by a prime,
// so they spread over any shard count.
func makeGuilds(n int) []Guild {
	const base = int64(300_000_000_000)
	out := make([]Guild, n)
	for i := range out {
		ts := base + int64(i)*7919
		out[i] = Guild{
			ID:        snowflake(ts, int64(i)),
			Name:      "guild-" + strconv.Itoa(i),
			ChannelID: snowflake(ts+1, int64(i)),
		}
	}
	return out
}

// guildsForShard returns the guilds that shard [id, n] holds.
func guildsForShard(all []Guild, shard [2]int) []Guild {
	var out []Guild
	for _, g := range all {
		if g.ShardID(shard[1]) == shard[0] {
			out = append(out, g)
		}
	}
	return out
}

func snowflakeTime(t time.Time) int64 {
	ms := t.UnixMilli() - discordEpochMs
	if ms < 0 {
		ms = 0
	}
	return ms
}

func guildCreateData(g Guild, at time.Time) map[string]any {
	return map[string]any{
		"id":           g.ID,
		"name":         g.Name,
		"unavailable":  false,
		"member_count": 2,
		"large":        false,
		"joined_at":    at.UTC().Format(time.RFC3339Nano),
		"channels": []map[string]any{{
			"id": g.ChannelID, "type": 0, "name": "general", "guild_id": g.ID, "position": 0,
		}},
		"roles":   []any{},
		"members": []any{},
	}
}
