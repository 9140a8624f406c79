package lifeline_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// A bot's main: build lifeline, add handlers to its Session, Start, and
// Stop on the way out. Here it runs against the fake Discord; against the
// real one, drop WithNetwork and set DISCORD_TOKEN.
func Example() {
	fake, err := discordtest.NewServer(discordtest.Options{Scale: 100})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	bot, err := lifeline.New(lifeline.Config{Token: fake.Token(), IdentifyWindow: fake.IdentifyWindow()},
		lifeline.WithIntents("Guilds", "GuildMessages"),
		lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
	if err != nil {
		panic(err)
	}
	bot.AddEventListener(lifeline.StateChanged, func(e lifeline.Event) {})
	bot.Session().AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bot.Start(ctx); err != nil {
		panic(err)
	}
	defer bot.Stop(ctx)
	fmt.Println(bot.Diagnostics().State)
	// Output: READY
}

// A bot registers what may be switched off under pressure; degradation
// (from the policy, or by hand as here) switches it off and back on.
func Example_degradation() {
	fake, err := discordtest.NewServer(discordtest.Options{Scale: 100, Guilds: 1})
	if err != nil {
		panic(err)
	}
	defer fake.Close()
	bot, err := lifeline.New(lifeline.Config{Token: fake.Token(), IdentifyWindow: fake.IdentifyWindow()},
		lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	bot.Features().Register("music", lifeline.Optional)
	_ = bot.Services().Register(ctx, "leaderboard", lifeline.Background(func(ctx context.Context) { <-ctx.Done() }), false)
	if err := bot.Start(ctx); err != nil {
		panic(err)
	}
	defer bot.Stop(ctx)
	channel := fake.Guilds()[0].ChannelID

	_, _ = bot.Degradation().Activate(ctx, lifeline.LevelSevere, []string{
		"disable_non_critical_features", "enable_read_only_mode", "shutdown_non_essential_services"}, "maintenance")
	_, err = bot.Session().ChannelMessageSend(channel, "hello")
	fmt.Println("music:", bot.Features().Enabled("music"), "leaderboard:", bot.Services().Running("leaderboard"),
		"read-only:", errors.Is(err, lifeline.ErrReadOnly))
	_, err = bot.Session().ChannelMessageSend(channel, "incident update", discordgo.WithContext(lifeline.Essential(ctx)))
	fmt.Println("essential message sent:", err == nil)

	_, _ = bot.Degradation().Deactivate(ctx, "maintenance over")
	_, err = bot.Session().ChannelMessageSend(channel, "hello again")
	fmt.Println("music:", bot.Features().Enabled("music"), "leaderboard:", bot.Services().Running("leaderboard"),
		"sent:", err == nil)
	// Output:
	// music: false leaderboard: false read-only: true
	// essential message sent: true
	// music: true leaderboard: true sent: true
}

// Configuration comes in layers, each overriding the ones before: the
// built-in defaults, a preset by bot size, the policy file, environment
// variables, then settings in code. Configuration says where each value
// came from.
func Example_configuration() {
	env := map[string]string{"DISCORD_TOKEN": "never printed", "DISCORD_MAX_RECONNECT_ATTEMPTS": "20"}
	bot, err := lifeline.New(lifeline.Config{},
		lifeline.WithPreset("medium"),
		lifeline.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
		lifeline.WithSetting("health.interval", 15*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer bot.Stop(context.Background())
	p, cfg := bot.Policy(), bot.Configuration()
	for _, s := range []struct {
		key   string
		value any
	}{
		{"connection.max_reconnect_attempts", p.Connection.MaxReconnectAttempts},
		{"health.interval", p.Health.Interval},
		{"health.enabled", p.Health.Enabled},
	} {
		src, _ := cfg.Source(s.key)
		fmt.Printf("%-34s %-5v from %s\n", s.key, s.value, src)
	}
	src, _ := cfg.Source("circuit_breaker.open_timeout")
	fmt.Println("circuit_breaker.open_timeout from", src.Kind, src.Name)
	// Output:
	// connection.max_reconnect_attempts  20    from env DISCORD_MAX_RECONNECT_ATTEMPTS
	// health.interval                    15s   from option Set("health.interval")
	// health.enabled                     true  from default
	// circuit_breaker.open_timeout from preset medium
}
