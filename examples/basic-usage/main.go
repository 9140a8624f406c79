// Command basic-usage is the smallest useful lifeline bot: the default
// policy, a message handler, and a clean shutdown. With DISCORD_TOKEN set
// it connects to Discord; without, it runs against an in-process fake
// Discord that sends it a message every second. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/discordtest"
)

func main() {
	duration := flag.Duration("duration", 0, "stop after this long (0: run until Ctrl-C)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if err := run(ctx, os.Getenv("DISCORD_TOKEN"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run is the bot: everything in main is process plumbing.
func run(ctx context.Context, token string, out io.Writer) error {
	var opts []lifeline.Option
	if token == "" {
		fake, err := discordtest.NewServer(discordtest.Options{Scale: 10, Guilds: 1})
		if err != nil {
			return err
		}
		defer fake.Close()
		token = fake.Token()
		opts = append(opts, lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
		go chatter(ctx, fake)
		fmt.Fprintln(out, "no DISCORD_TOKEN: running against the built-in fake Discord")
	}

	bot, err := lifeline.New(lifeline.Config{Token: token}, append(opts, lifeline.WithIntents("Guilds", "GuildMessages"))...)
	if err != nil {
		return err
	}
	bot.AddEventListener(lifeline.StateChanged, func(e lifeline.Event) { fmt.Fprintln(out, "state:", e.Data.Summary()) })
	bot.Session().AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {
		fmt.Fprintln(out, "message:", m.Content)
		if strings.HasPrefix(m.Content, "!ping") {
			_, _ = s.ChannelMessageSend(m.ChannelID, "pong")
		}
	})

	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bot.Start(startCtx); err != nil {
		return err
	}
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bot.Stop(stopCtx)
}

// chatter makes the fake Discord send a message every second.
func chatter(ctx context.Context, fake *discordtest.Server) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = fake.EmitMessage(fake.Guilds()[0].ChannelID, fmt.Sprintf("!ping %d", i))
		}
	}
}
