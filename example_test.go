package lifeline_test

import (
	"context"
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
