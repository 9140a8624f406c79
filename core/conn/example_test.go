package conn

import (
	"fmt"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/lifeline-bot/lifeline/core/clock"
)

// ExampleTap shows how a Session is wired through the tap and the
// transport. It is compiled, not run: Open would dial Discord.
func ExampleTap() {
	tap := NewTap(TapSettings{
		Observer: ObserverFunc(func(o Observation) {
			switch o.Kind {
			case KindHello, KindReady, KindClose, KindInvalidSession, KindReconnect:
				fmt.Println(o)
			}
		}),
	})
	rest, err := NewTransport(TransportSettings{
		Observer: RESTObserverFunc(func(r RESTResult) { fmt.Println(r.Method, r.Route, r.Status) }),
	})
	if err != nil {
		panic(err)
	}
	s, _ := discordgo.New("Bot " + "token-from-config")
	s.Dialer = tap.Dialer()                  // its own dialer, never websocket.DefaultDialer
	s.Client = rest.Client(20 * time.Second) // its own client and connection pool
	s.ShouldReconnectOnError = false         // lifeline drives recovery
	s.Identify.Compress = false              // plain JSON text frames the tap can read
	_ = s.Open
}

// ExampleTap_observations feeds recorded gateway frames through a tapped
// connection and prints what the tap reports.
func ExampleTap_observations() {
	tap := NewTap(TapSettings{
		Clock:    clock.NewFake(time.Time{}),
		Observer: ObserverFunc(func(o Observation) { fmt.Println(o) }),
	})
	c := tap.wrapFrames(nopConn{})
	c.rd.s.feed(text(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`, false))
	c.wr.s.feed(text(`{"op":2,"d":{"token":"Bot secret","intents":513,"compress":false}}`, true))
	c.rd.s.feed(text(`{"t":"READY","s":1,"op":0,"d":{"session_id":"abc","resume_gateway_url":"wss://gw.example"}}`, false))
	c.rd.s.feed(text(`{"op":9,"d":true}`, false))
	c.rd.s.feed(encodeFrame(wf{fin: true, op: OpClose, payload: closePayload(4014, "Disallowed intent(s).")}))
	// Output:
	// conn 1 sent dial
	// conn 1 received hello interval=41.25s
	// conn 1 sent identify shard=none intents=Guilds|GuildMessages compress=false
	// conn 1 received dispatch s=1 t=READY
	// conn 1 received ready session=abc resume_url=wss://gw.example
	// conn 1 received invalid-session resumable=true
	// conn 1 received close code=4014 reason="Disallowed intent(s)."
}
