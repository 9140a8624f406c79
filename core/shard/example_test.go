package shard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/shard"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// Example runs a bot's four shards against the fake Discord (two identify
// buckets), prints the start's progress and the process's aggregate, then
// stops them resumably.
func Example() {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 50, Guilds: 16, RecommendedShards: 4, MaxConcurrency: 2})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	m, err := shard.New(shard.Config{
		Token:          srv.Token(),
		ShardCount:     shard.Auto, // /gateway/bot recommends 4
		RESTTransport:  srv.Transport(),
		IdentifyWindow: srv.IdentifyWindow(),
		IdentifyMargin: srv.IdentifyWindow() / 2,
		Conn:           conn.Config{GatewayDialer: srv.Dialer()},
		OnProgress:     func(p shard.Progress) { fmt.Println(p) },
	})
	if err != nil {
		panic(err)
	}
	// Handlers go to every shard's Session, added before Start to see READY.
	m.AddHandler(func(s *discordgo.Session, r *discordgo.Ready) {})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	a := m.View().Aggregate
	fmt.Printf("%d of %d shards ready, %.0f%% unhealthy, %d IDENTIFYs\n", a.Ready, a.Total, 100*a.UnhealthyRatio, a.Identifies)
	fmt.Println("guild", srv.Guilds()[1].ID, "is on shard", m.ShardForGuild(srv.Guilds()[1].ID).ID())
	if err := m.Stop(ctx); err != nil {
		panic(err)
	}
	// Output:
	// 1 of 4 shards READY
	// 2 of 4 shards READY
	// 3 of 4 shards READY
	// 4 of 4 shards READY
	// 4 of 4 shards ready, 0% unhealthy, 4 IDENTIFYs
	// guild 1258291233214693377 is on shard 3
}
