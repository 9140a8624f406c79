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

// A scenario file scripts faults at offsets; Run plays it against a
// server, compressed by the server's Scale.
func ExampleParseScenario() {
	src := []byte(`
name = "short-outage"

step "drop" {
  at = "10s"
}

step "outage" {
  at       = "10s"
  duration = "30s"
  mode     = "refuse"
}
`)
	sc, err := discordtest.ParseScenario("short-outage.hcl", src)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, st := range sc.Steps {
		fmt.Println(st.At, st.Fault.Kind, st.Fault.Duration)
	}
	fmt.Println("length", sc.Length())

	_, err = discordtest.ParseScenario("bad.hcl", []byte("step \"close\" {\n  at = \"1s\"\n}\n"))
	fmt.Println(err)
	// Output:
	// 10s drop 0s
	// 10s outage 30s
	// length 40s
	// invalid scenario: bad.hcl:1,1: Invalid step; fault close needs "code".
}
