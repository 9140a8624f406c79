package conn

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// IntentInfo is one gateway intent lifeline knows by name.
type IntentInfo struct {
	// Name is the canonical name, e.g. "GuildMessages".
	Name string
	// Intent is discordgo's constant for it.
	Intent discordgo.Intent
	// Privileged intents must be enabled for the application in the
	// Discord Developer Portal; asking for one that is not gets close
	// code 4014.
	Privileged bool
}

// intentTable lists every intent discordgo v0.29.0 defines, in bit order.
var intentTable = []IntentInfo{
	{"Guilds", discordgo.IntentGuilds, false},
	{"GuildMembers", discordgo.IntentGuildMembers, true},
	{"GuildModeration", discordgo.IntentGuildModeration, false},
	{"GuildEmojis", discordgo.IntentGuildEmojis, false},
	{"GuildIntegrations", discordgo.IntentGuildIntegrations, false},
	{"GuildWebhooks", discordgo.IntentGuildWebhooks, false},
	{"GuildInvites", discordgo.IntentGuildInvites, false},
	{"GuildVoiceStates", discordgo.IntentGuildVoiceStates, false},
	{"GuildPresences", discordgo.IntentGuildPresences, true},
	{"GuildMessages", discordgo.IntentGuildMessages, false},
	{"GuildMessageReactions", discordgo.IntentGuildMessageReactions, false},
	{"GuildMessageTyping", discordgo.IntentGuildMessageTyping, false},
	{"DirectMessages", discordgo.IntentDirectMessages, false},
	{"DirectMessageReactions", discordgo.IntentDirectMessageReactions, false},
	{"DirectMessageTyping", discordgo.IntentDirectMessageTyping, false},
	{"MessageContent", discordgo.IntentMessageContent, true},
	{"GuildScheduledEvents", discordgo.IntentGuildScheduledEvents, false},
	{"AutoModerationConfiguration", discordgo.IntentAutoModerationConfiguration, false},
	{"AutoModerationExecution", discordgo.IntentAutoModerationExecution, false},
	{"GuildMessagePolls", discordgo.IntentGuildMessagePolls, false},
	{"DirectMessagePolls", discordgo.IntentDirectMessagePolls, false},
}

// intentAliases are other names accepted by ParseIntents: older or newer
// names Discord and discordgo use for the same bit.
var intentAliases = map[string]string{
	"GuildBans":        "GuildModeration",
	"GuildExpressions": "GuildEmojis",
	// core/policy's canonical name (Discord's docs: GUILD_EMOJIS_AND_STICKERS).
	"GuildEmojisAndStickers": "GuildEmojis",
}

// Group names ParseIntents accepts besides the single intents.
const (
	// IntentGroupAll names every intent in the table, privileged ones
	// included.
	IntentGroupAll = "All"
	// IntentGroupAllWithoutPrivileged names every intent in the table
	// that is not privileged. Unlike discordgo.IntentsAllWithoutPrivileged
	// it includes the two poll intents, which discordgo v0.29.0 defines
	// but leaves out of its constant.
	IntentGroupAllWithoutPrivileged = "AllWithoutPrivileged"
)

// ErrUnknownIntent is returned (inside an *UnknownIntentError) when
// ParseIntents meets a name that is not an intent.
var ErrUnknownIntent = errors.New("unknown intent")

// UnknownIntentError says which name was not an intent, which valid name
// is closest, and lists the valid ones.
type UnknownIntentError struct {
	// Name is the name as given.
	Name string
	// Suggestion is the closest valid name, or "" when none is close.
	Suggestion string
}

// Error names the bad intent, the suggestion and every valid name.
func (e *UnknownIntentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "conn: unknown intent %q", e.Name)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %q?)", e.Suggestion)
	}
	b.WriteString("; valid intents: ")
	b.WriteString(strings.Join(IntentNameList(), ", "))
	b.WriteString(" (privileged: ")
	var priv []string
	for _, in := range intentTable {
		if in.Privileged {
			priv = append(priv, in.Name)
		}
	}
	b.WriteString(strings.Join(priv, ", "))
	fmt.Fprintf(&b, "), or the groups %s and %s", IntentGroupAll, IntentGroupAllWithoutPrivileged)
	return b.String()
}

// Unwrap returns ErrUnknownIntent.
func (e *UnknownIntentError) Unwrap() error { return ErrUnknownIntent }

// Intents returns the intent table in bit order. The slice is a copy.
func Intents() []IntentInfo {
	return append([]IntentInfo(nil), intentTable...)
}

// IntentNameList returns the canonical intent names in bit order.
func IntentNameList() []string {
	out := make([]string, len(intentTable))
	for i, in := range intentTable {
		out[i] = in.Name
	}
	return out
}

// PrivilegedIntents is the mask of the privileged intents: GuildMembers,
// GuildPresences and MessageContent.
const PrivilegedIntents = discordgo.IntentGuildMembers | discordgo.IntentGuildPresences | discordgo.IntentMessageContent

// normalizeIntentName folds the spellings ParseIntents accepts onto one
// key: case-insensitive, without '_', '-', '.' or spaces, and without a
// leading "Intent" or "Intents" (so "GUILD_MESSAGES", "guild-messages"
// and "IntentGuildMessages" all name GuildMessages).
func normalizeIntentName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '_', '-', '.', ' ', '\t':
			continue
		}
		b.WriteString(strings.ToLower(string(r)))
	}
	k := b.String()
	for _, p := range []string{"intents", "intent"} {
		if strings.HasPrefix(k, p) && len(k) > len(p) {
			return k[len(p):]
		}
	}
	return k
}

// intentIndex maps normalized names (canonical, aliases and groups) to
// masks.
var intentIndex = func() map[string]discordgo.Intent {
	m := make(map[string]discordgo.Intent)
	var all, unpriv discordgo.Intent
	for _, in := range intentTable {
		m[normalizeIntentName(in.Name)] = in.Intent
		all |= in.Intent
		if !in.Privileged {
			unpriv |= in.Intent
		}
	}
	for alias, canon := range intentAliases {
		m[normalizeIntentName(alias)] = m[normalizeIntentName(canon)]
	}
	m[normalizeIntentName(IntentGroupAll)] = all
	m[normalizeIntentName(IntentGroupAllWithoutPrivileged)] = unpriv
	return m
}()

// ParseIntents turns intent names into a mask. Names are matched without
// regard to case, '_', '-' or a leading "Intent", so "GuildMessages",
// "GUILD_MESSAGES" and "IntentGuildMessages" are the same; the aliases
// GuildBans (for GuildModeration), GuildExpressions and
// GuildEmojisAndStickers (for GuildEmojis)
// and the groups All and AllWithoutPrivileged are accepted too. An empty
// list gives 0. A name that is not an intent gives an *UnknownIntentError
// that suggests the closest name and lists the valid ones.
func ParseIntents(names []string) (discordgo.Intent, error) {
	var mask discordgo.Intent
	for _, name := range names {
		v, ok := intentIndex[normalizeIntentName(name)]
		if !ok || strings.TrimSpace(name) == "" {
			return 0, &UnknownIntentError{Name: name, Suggestion: suggestIntent(name)}
		}
		mask |= v
	}
	return mask, nil
}

// IntentNames returns the canonical names of the known intents in mask,
// in bit order. Bits no intent uses are left out; UnknownIntentBits
// returns them.
func IntentNames(mask discordgo.Intent) []string {
	var out []string
	for _, in := range intentTable {
		if mask&in.Intent != 0 {
			out = append(out, in.Name)
		}
	}
	return out
}

// UnknownIntentBits returns the bits of mask that no known intent uses.
func UnknownIntentBits(mask discordgo.Intent) discordgo.Intent {
	for _, in := range intentTable {
		mask &^= in.Intent
	}
	return mask
}

// FormatIntents renders mask as names joined by '|', with unknown bits
// as "1<<N", e.g. "Guilds|GuildMessages|1<<30"; 0 renders as "None".
func FormatIntents(mask discordgo.Intent) string {
	parts := IntentNames(mask)
	for u := uint64(UnknownIntentBits(mask)); u != 0; u &= u - 1 {
		parts = append(parts, fmt.Sprintf("1<<%d", bits.TrailingZeros64(u)))
	}
	if len(parts) == 0 {
		return "None"
	}
	return strings.Join(parts, "|")
}

// PrivilegedIn returns the privileged intents in mask.
func PrivilegedIn(mask discordgo.Intent) discordgo.Intent {
	return mask & PrivilegedIntents
}

// suggestIntent returns the valid name closest to name by edit distance
// over normalized spellings, or "" when nothing is close enough to be a
// plausible typo (distance above a third of the longer name).
func suggestIntent(name string) string {
	key := normalizeIntentName(name)
	if key == "" {
		return ""
	}
	candidates := append(IntentNameList(), IntentGroupAll, IntentGroupAllWithoutPrivileged)
	aliases := make([]string, 0, len(intentAliases))
	for alias := range intentAliases {
		aliases = append(aliases, alias)
	}
	sort.Strings(aliases)
	candidates = append(candidates, aliases...)
	best, bestDist := "", -1
	for _, c := range candidates {
		// The first candidate at the lowest distance wins, so ties go to
		// the table order, then groups, then aliases.
		if d := editDistance(key, normalizeIntentName(c)); bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	longer := max(len(key), len(normalizeIntentName(best)))
	if bestDist*3 > longer {
		return ""
	}
	if canon, ok := intentAliases[best]; ok {
		return canon
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (intent names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
