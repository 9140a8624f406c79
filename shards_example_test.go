package lifeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// A sharded bot: lifeline runs every shard Discord recommends (four here)
// in one process, reports each as it becomes READY, and gives the bot's
// handler every shard's events. The policy can act on the process through
// the shards.* variables (shards.unhealthy_ratio > 0.2, ...).
func Example_shards() {
	fake, err := discordtest.NewServer(discordtest.Options{Scale: 100, Guilds: 8, RecommendedShards: 4, MaxConcurrency: 4})
	if err != nil {
		panic(err)
	}
	defer fake.Close()

	bot, err := lifeline.New(lifeline.Config{Token: fake.Token(), IdentifyWindow: fake.IdentifyWindow()},
		lifeline.WithShards(0), // 0: as many as /gateway/bot recommends
		lifeline.WithShardProgress(func(p lifeline.ShardProgress) { fmt.Println(p) }),
		lifeline.WithNetwork(fake.Transport(), fake.Dialer()))
	if err != nil {
		panic(err)
	}
	bot.AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := bot.Start(ctx); err != nil {
		panic(err)
	}
	defer bot.Stop(ctx)
	snap := bot.Snapshot()
	fmt.Printf("%d shards, %d ready, gateway %s\n", snap.Shards.Total, snap.Shards.Ready, bot.Diagnostics().State)
	// Output:
	// 1 of 4 shards READY
	// 2 of 4 shards READY
	// 3 of 4 shards READY
	// 4 of 4 shards READY
	// 4 shards, 4 ready, gateway READY
}
