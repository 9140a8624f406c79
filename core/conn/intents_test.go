package conn

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
)

func TestParseIntents(t *testing.T) {
	tests := []struct {
		name  string
		in    []string
		want  discordgo.Intent
		wantE string // non-empty: the error must contain this
		sugg  string
	}{
		{name: "empty", in: nil, want: 0},
		{name: "one", in: []string{"Guilds"}, want: discordgo.IntentGuilds},
		{name: "several", in: []string{"Guilds", "GuildMessages", "MessageContent"},
			want: discordgo.IntentGuilds | discordgo.IntentGuildMessages | discordgo.IntentMessageContent},
		{name: "duplicates", in: []string{"Guilds", "guilds"}, want: discordgo.IntentGuilds},
		{name: "discord spelling", in: []string{"GUILD_MESSAGES", "DIRECT_MESSAGE_REACTIONS"},
			want: discordgo.IntentGuildMessages | discordgo.IntentDirectMessageReactions},
		{name: "discordgo spelling", in: []string{"IntentGuildMembers", "IntentsGuildPresences"},
			want: discordgo.IntentGuildMembers | discordgo.IntentGuildPresences},
		{name: "kebab", in: []string{"auto-moderation-execution"}, want: discordgo.IntentAutoModerationExecution},
		{name: "alias bans", in: []string{"GuildBans"}, want: discordgo.IntentGuildModeration},
		{name: "alias expressions", in: []string{"GuildExpressions"}, want: discordgo.IntentGuildEmojis},
		{name: "polls", in: []string{"GuildMessagePolls", "DirectMessagePolls"},
			want: discordgo.IntentGuildMessagePolls | discordgo.IntentDirectMessagePolls},
		{name: "all", in: []string{"All"}, want: discordgo.IntentsAll | discordgo.IntentGuildMessagePolls | discordgo.IntentDirectMessagePolls},
		{name: "all unprivileged", in: []string{"AllWithoutPrivileged"},
			want: discordgo.IntentsAllWithoutPrivileged | discordgo.IntentGuildMessagePolls | discordgo.IntentDirectMessagePolls},
		{name: "typo", in: []string{"Guilds", "GuildMesages"}, wantE: `unknown intent "GuildMesages"`, sugg: "GuildMessages"},
		{name: "typo in alias", in: []string{"GuildBan"}, wantE: `unknown intent "GuildBan"`, sugg: "GuildModeration"},
		{name: "nonsense", in: []string{"Pizza"}, wantE: `unknown intent "Pizza"`, sugg: ""},
		{name: "blank", in: []string{"  "}, wantE: `unknown intent "  "`, sugg: ""},
		{name: "bare prefix", in: []string{"Intent"}, wantE: `unknown intent "Intent"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseIntents(tt.in)
			if tt.wantE == "" {
				if err != nil {
					t.Fatalf("ParseIntents(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Fatalf("ParseIntents(%q) = %s, want %s", tt.in, FormatIntents(got), FormatIntents(tt.want))
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseIntents(%q) = %v, want an error", tt.in, got)
			}
			if !errors.Is(err, ErrUnknownIntent) {
				t.Errorf("error %v does not match ErrUnknownIntent", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantE) {
				t.Errorf("error %q lacks %q", msg, tt.wantE)
			}
			for _, n := range IntentNameList() {
				if !strings.Contains(msg, n) {
					t.Errorf("error does not list the valid name %s", n)
				}
			}
			var ue *UnknownIntentError
			if !errors.As(err, &ue) {
				t.Fatal("not an *UnknownIntentError")
			}
			if ue.Suggestion != tt.sugg {
				t.Errorf("Suggestion = %q, want %q", ue.Suggestion, tt.sugg)
			}
			if tt.sugg != "" && !strings.Contains(msg, fmt.Sprintf("did you mean %q", tt.sugg)) {
				t.Errorf("error %q does not suggest %q", msg, tt.sugg)
			}
		})
	}
}

func TestIntentTableMatchesDiscordgo(t *testing.T) {
	// Every bit from discordgo's IntentsAll is in the table, each table
	// entry is one distinct bit, and the privileged set is exactly the
	// three Discord names.
	var seen discordgo.Intent
	for _, in := range Intents() {
		if in.Intent == 0 || in.Intent&(in.Intent-1) != 0 {
			t.Errorf("%s = %d is not a single bit", in.Name, in.Intent)
		}
		if seen&in.Intent != 0 {
			t.Errorf("%s repeats a bit", in.Name)
		}
		seen |= in.Intent
		wantPriv := in.Name == "GuildMembers" || in.Name == "GuildPresences" || in.Name == "MessageContent"
		if in.Privileged != wantPriv {
			t.Errorf("%s privileged = %v", in.Name, in.Privileged)
		}
		if got, err := ParseIntents([]string{in.Name}); err != nil || got != in.Intent {
			t.Errorf("ParseIntents(%s) = %d, %v", in.Name, got, err)
		}
	}
	if missing := discordgo.IntentsAll &^ seen; missing != 0 {
		t.Errorf("discordgo.IntentsAll has bits the table lacks: %b", missing)
	}
	if PrivilegedIn(discordgo.IntentsAll) != PrivilegedIntents || PrivilegedIn(discordgo.IntentsAllWithoutPrivileged) != 0 {
		t.Error("PrivilegedIn disagrees with discordgo's privileged split")
	}
}

func TestIntentNamesRoundTrip(t *testing.T) {
	masks := []discordgo.Intent{0, discordgo.IntentGuilds, discordgo.IntentsAllWithoutPrivileged, discordgo.IntentsAll,
		discordgo.IntentGuildMessages | discordgo.IntentMessageContent}
	for _, m := range masks {
		got, err := ParseIntents(IntentNames(m))
		if err != nil || got != m {
			t.Errorf("round trip of %b: got %b, %v", m, got, err)
		}
	}
}

func TestFormatIntents(t *testing.T) {
	tests := []struct {
		mask discordgo.Intent
		want string
	}{
		{0, "None"},
		{discordgo.IntentGuilds | discordgo.IntentGuildMessages, "Guilds|GuildMessages"},
		{discordgo.IntentGuilds | 1<<30 | 1<<17, "Guilds|1<<17|1<<30"},
	}
	for _, tt := range tests {
		if got := FormatIntents(tt.mask); got != tt.want {
			t.Errorf("FormatIntents(%b) = %q, want %q", tt.mask, got, tt.want)
		}
	}
	if got := UnknownIntentBits(discordgo.IntentGuilds | 1<<30); got != 1<<30 {
		t.Errorf("UnknownIntentBits = %b", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"guilds", "guilds", 0}, {"ab", "ba", 2}} {
		if got := editDistance(tt.a, tt.b); got != tt.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.d)
		}
	}
}

func ExampleParseIntents() {
	mask, err := ParseIntents([]string{"Guilds", "GuildMessages", "MessageContent"})
	fmt.Println(mask, err)
	fmt.Println(FormatIntents(PrivilegedIn(mask)))
	_, err = ParseIntents([]string{"GuildMesages"})
	var ue *UnknownIntentError
	if errors.As(err, &ue) {
		fmt.Println(ue.Name, "->", ue.Suggestion)
	}
	// Output:
	// 33281 <nil>
	// MessageContent
	// GuildMesages -> GuildMessages
}
