package policy

import "strings"

// Intent describes one gateway intent name a policy may use.
type Intent struct {
	// Name is the canonical name, e.g. "GuildMessages".
	Name string
	// Bit is the intent's bit in the IDENTIFY intents field; it equals the
	// matching discordgo.Intent constant.
	Bit int
	// Privileged intents must also be enabled for the application in the
	// Discord Developer Portal, or the gateway closes with 4014.
	Privileged bool
}

// intents is the table of gateway intents discordgo v0.29.0 defines, with
// Discord's current names. Aliases map older names to these.
var intents = []Intent{
	{"Guilds", 1 << 0, false},
	{"GuildMembers", 1 << 1, true},
	{"GuildModeration", 1 << 2, false},
	{"GuildEmojisAndStickers", 1 << 3, false},
	{"GuildIntegrations", 1 << 4, false},
	{"GuildWebhooks", 1 << 5, false},
	{"GuildInvites", 1 << 6, false},
	{"GuildVoiceStates", 1 << 7, false},
	{"GuildPresences", 1 << 8, true},
	{"GuildMessages", 1 << 9, false},
	{"GuildMessageReactions", 1 << 10, false},
	{"GuildMessageTyping", 1 << 11, false},
	{"DirectMessages", 1 << 12, false},
	{"DirectMessageReactions", 1 << 13, false},
	{"DirectMessageTyping", 1 << 14, false},
	{"MessageContent", 1 << 15, true},
	{"GuildScheduledEvents", 1 << 16, false},
	{"AutoModerationConfiguration", 1 << 20, false},
	{"AutoModerationExecution", 1 << 21, false},
	{"GuildMessagePolls", 1 << 24, false},
	{"DirectMessagePolls", 1 << 25, false},
}

// intentAliases maps older or discordgo-specific names to canonical ones.
var intentAliases = map[string]string{
	"GuildBans":   "GuildModeration",
	"GuildEmojis": "GuildEmojisAndStickers",
}

// Intents returns every known gateway intent, in bit order.
func Intents() []Intent {
	return append([]Intent(nil), intents...)
}

// LookupIntent finds an intent by name. Matching ignores case, and the
// aliases GuildBans (GuildModeration) and GuildEmojis
// (GuildEmojisAndStickers) are accepted; the result carries the canonical
// name.
func LookupIntent(name string) (Intent, bool) {
	for alias, canon := range intentAliases {
		if strings.EqualFold(alias, name) {
			name = canon
			break
		}
	}
	for _, in := range intents {
		if strings.EqualFold(in.Name, name) {
			return in, true
		}
	}
	return Intent{}, false
}

func intentNames() []string {
	out := make([]string, 0, len(intents)+len(intentAliases))
	for _, in := range intents {
		out = append(out, in.Name)
	}
	for a := range intentAliases {
		out = append(out, a)
	}
	return out
}
