package policy

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
)

func TestIntentBitsMatchDiscordgo(t *testing.T) {
	want := map[string]discordgo.Intent{
		"Guilds": discordgo.IntentGuilds, "GuildMembers": discordgo.IntentGuildMembers,
		"GuildModeration": discordgo.IntentGuildModeration, "GuildEmojisAndStickers": discordgo.IntentGuildEmojis,
		"GuildIntegrations": discordgo.IntentGuildIntegrations, "GuildWebhooks": discordgo.IntentGuildWebhooks,
		"GuildInvites": discordgo.IntentGuildInvites, "GuildVoiceStates": discordgo.IntentGuildVoiceStates,
		"GuildPresences": discordgo.IntentGuildPresences, "GuildMessages": discordgo.IntentGuildMessages,
		"GuildMessageReactions": discordgo.IntentGuildMessageReactions, "GuildMessageTyping": discordgo.IntentGuildMessageTyping,
		"DirectMessages": discordgo.IntentDirectMessages, "DirectMessageReactions": discordgo.IntentDirectMessageReactions,
		"DirectMessageTyping": discordgo.IntentDirectMessageTyping, "MessageContent": discordgo.IntentMessageContent,
		"GuildScheduledEvents": discordgo.IntentGuildScheduledEvents, "AutoModerationConfiguration": discordgo.IntentAutoModerationConfiguration,
		"AutoModerationExecution": discordgo.IntentAutoModerationExecution, "GuildMessagePolls": discordgo.IntentGuildMessagePolls,
		"DirectMessagePolls": discordgo.IntentDirectMessagePolls,
	}
	all := Intents()
	if len(all) != len(want) {
		t.Errorf("%d intents, discordgo has %d", len(all), len(want))
	}
	mask := 0
	for _, in := range all {
		if w, ok := want[in.Name]; !ok || int(w) != in.Bit {
			t.Errorf("%s: bit %d, discordgo %d", in.Name, in.Bit, w)
		}
		privileged := discordgo.IntentsAll&^discordgo.IntentsAllWithoutPrivileged&discordgo.Intent(in.Bit) != 0
		if in.Name == "GuildMessagePolls" || in.Name == "DirectMessagePolls" {
			continue // newer than discordgo's IntentsAll
		}
		if privileged != in.Privileged {
			t.Errorf("%s: privileged %v, discordgo says %v", in.Name, in.Privileged, privileged)
		}
		mask |= in.Bit
	}
	for alias, canon := range map[string]string{"GuildBans": "GuildModeration", "guildemojis": "GuildEmojisAndStickers", "guilds": "Guilds"} {
		if in, ok := LookupIntent(alias); !ok || in.Name != canon {
			t.Errorf("LookupIntent(%q) = %+v, %v", alias, in, ok)
		}
	}
	c := Connection{Intents: []string{"Guilds", "GuildMessages", "MessageContent"}}
	if got := c.IntentMask(); got != int(discordgo.IntentGuilds|discordgo.IntentGuildMessages|discordgo.IntentMessageContent) {
		t.Errorf("IntentMask = %d", got)
	}
}

func TestTokenNeverPrinted(t *testing.T) {
	const secret = "NzY1.literal.token-value"
	srcs := []string{
		// A syntax error: HCL's own diagnostic shows the line, redacted.
		`connection { token = "` + secret + `"  intents = ["Nope"] }`,
		"connection {\n  token = \"" + secret + "\"\n  zombie_after = 50\n}\n",
		"locals { t = \"" + secret + "\" }\nconnection { token = local.t }\n",
		"connection {\n  token = <<EOT\n" + secret + "\nEOT\n}\n",
	}
	for _, src := range srcs {
		_, diags := Decode("p.hcl", []byte(src), Options{})
		if !diags.HasErrors() {
			t.Fatalf("%q decoded without errors", src)
		}
		var b bytes.Buffer
		if err := WriteDiagnostics(&b, diags, map[string][]byte{"p.hcl": []byte(src)}, true); err != nil {
			t.Fatal(err)
		}
		out := b.String() + strings.Join(DiagnosticLines(diags), "\n") + (&DiagnosticsError{Diagnostics: diags}).Error()
		if strings.Contains(out, secret) || strings.Contains(out, "literal.token") {
			t.Errorf("the token leaks:\n%s", out)
		}
		if strings.Contains(src, "\n") && !strings.Contains(out, "Token must come from the environment") {
			t.Errorf("no token diagnostic:\n%s", out)
		}
	}
	// env() is fine, and its name is kept.
	p, diags := Decode("p.hcl", []byte(`connection { token = env("X_TOKEN") }`), Options{LookupEnv: func(string) (string, bool) { return secret, true }})
	if diags.HasErrors() || p.Connection.TokenEnv != "X_TOKEN" {
		t.Fatalf("env token: %v %+v", diags, p)
	}
	if strings.Contains(string(policyJSON(t, p, false)), secret) {
		t.Error("the decoded policy holds the token")
	}
}
