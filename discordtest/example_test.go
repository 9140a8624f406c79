package discordtest_test

import (
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/discordtest"
)

// A discordgo Session connects to the fake through its own http.Client and
// Dialer; no discordgo package variable changes.
func ExampleNewServer() {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 100})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	s, _ := discordgo.New("Bot " + srv.Token())
	s.Client = srv.Client()
	s.Dialer = srv.Dialer()
	s.LogLevel = -1
	ready := make(chan *discordgo.Ready, 1)
	s.AddHandler(func(_ *discordgo.Session, r *discordgo.Ready) { ready <- r })
	if err := s.Open(); err != nil {
		fmt.Println(err)
		return
	}
	defer s.CloseWithCode(4000)

	select {
	case r := <-ready:
		fmt.Println("ready as", r.User.Username, "shard", r.Shard[0], "of", r.Shard[1])
	case <-time.After(10 * time.Second):
		fmt.Println("no READY")
		return
	}
	bot, _ := s.GatewayBot()
	fmt.Println("session starts left:", bot.SessionStartLimit.Remaining, "of", bot.SessionStartLimit.Total)
	fmt.Println("violations:", len(srv.Ledger().Violations()))
	// Output:
	// ready as discordtest-bot shard 0 of 1
	// session starts left: 999 of 1000
	// violations: 0
}
