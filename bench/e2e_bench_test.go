package bench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// The end-to-end benchmarks run lifeline's managed connection (core/conn,
// default settings) and a plain discordgo v0.29.0 Session with its own
// reconnect, each against a fresh fake Discord per iteration with the same
// scaled clock (Scale 200: a 206 ms heartbeat interval). Every figure is
// read from the fake's ledger, the same instrument for both clients, so the
// benchmark's own polling does not enter the figures. Each reports the
// median over its iterations (-benchtime Nx sets how many).

// e2eScale divides Discord's timings; 200 keeps a discordgo zombie run
// (more than 5 intervals) near a second.
const e2eScale = 200

// e2eWait bounds every wait for the client or the fake; far above what
// they need, so only a broken run reaches it.
const e2eWait = 30 * time.Second

func newE2EFake(b *testing.B) *discordtest.Server {
	b.Helper()
	srv, err := discordtest.NewServer(discordtest.Options{Scale: e2eScale, Guilds: 1,
		SessionExpiry: 30 * time.Second, HeartbeatTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

// waitUntil polls cond until it holds or e2eWait passes.
func waitUntil(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(e2eWait)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("gave up after %v waiting for %s", e2eWait, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// client is one of the two clients under test, connected to a fake.
type client interface {
	// close ends the client; its error is not part of the figure.
	close()
}

type lifelineClient struct{ c *conn.Connection }

func (l lifelineClient) close() {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	_ = l.c.Stop(ctx)
}

type discordgoClient struct{ s *discordgo.Session }

func (d discordgoClient) close() { _ = d.s.Close() }

// startLifeline connects a managed connection with lifeline's defaults.
func startLifeline(b *testing.B, srv *discordtest.Server) client {
	b.Helper()
	c, err := conn.New(conn.Config{
		Token: srv.Token(), GatewayURL: srv.GatewayURL(),
		RESTTransport: srv.Transport(), GatewayDialer: srv.Dialer(),
		IdentifyQueue: conn.NewLocalIdentifyQueue(conn.SessionStartLimit{Total: 1000, Remaining: 1000, ResetAfter: time.Hour, MaxConcurrency: 1},
			conn.IdentifyQueueOptions{Window: srv.IdentifyWindow(), Margin: srv.IdentifyWindow() / 2}),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	return lifelineClient{c}
}

// startDiscordgo opens a plain discordgo Session, its own reconnect on (as
// discordgo.New sets it), and waits for READY.
func startDiscordgo(b *testing.B, srv *discordtest.Server) client {
	b.Helper()
	s, err := discordgo.New("Bot " + srv.Token())
	if err != nil {
		b.Fatal(err)
	}
	s.Client = srv.Client()
	s.Dialer = srv.Dialer()
	s.LogLevel = -1
	ready := make(chan struct{}, 1)
	s.AddHandler(func(*discordgo.Session, *discordgo.Ready) {
		select {
		case ready <- struct{}{}:
		default:
		}
	})
	if err := s.Open(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(e2eWait):
		b.Fatal("discordgo: no READY")
	}
	return discordgoClient{s}
}

var e2eClients = []struct {
	name  string
	start func(*testing.B, *discordtest.Server) client
}{
	{"lifeline", startLifeline},
	{"discordgo", startDiscordgo},
}

// sentOps returns the times of the frames of one connection the fake sent
// with op.
func sentOps(srv *discordtest.Server, connID int64, op int) []time.Time {
	c, _ := srv.Ledger().Connection(connID)
	var out []time.Time
	for _, f := range c.Frames {
		if f.Dir == discordtest.Sent && f.Op == op {
			out = append(out, f.At)
		}
	}
	return out
}

// union is the sorted set of the sequences in a and b.
func union(a, b []int64) []int64 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// median of d (d is sorted in place).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// BenchmarkZombieDetection: the fake stops answering heartbeats on the
// first connection (the TCP connection stays up); the figure is the time
// from the last ACK the fake sent to the client giving up on that
// connection (its close, as the ledger records it: the start of the
// reconnect), in heartbeat intervals ("intervals") and milliseconds.
func BenchmarkZombieDetection(b *testing.B) {
	for _, cl := range e2eClients {
		b.Run(cl.name, func(b *testing.B) {
			var kept []time.Duration
			var interval time.Duration
			for range b.N {
				srv := newE2EFake(b)
				interval = srv.HeartbeatInterval()
				c := cl.start(b, srv)
				waitUntil(b, "a heartbeat ACK", func() bool { return len(sentOps(srv, 1, discordtest.OpHeartbeatACK)) > 0 })
				if err := srv.StallACKs(0); err != nil {
					b.Fatal(err)
				}
				waitUntil(b, "the client to leave the zombie connection", func() bool {
					r, _ := srv.Ledger().Connection(1)
					return r.Closed
				})
				acks := sentOps(srv, 1, discordtest.OpHeartbeatACK)
				r, _ := srv.Ledger().Connection(1)
				kept = append(kept, r.ClosedAt.Sub(acks[len(acks)-1]))
				srv.ClearFaults()
				c.close()
				srv.Close()
			}
			m := median(kept)
			b.ReportMetric(float64(m)/float64(interval), "intervals")
			b.ReportMetric(float64(m)/float64(time.Millisecond), "ms")
		})
	}
}

// BenchmarkDropToResumed: the fake drops the TCP connection (no close
// frame) while it keeps emitting messages; the figure is the time from the
// drop to the fake accepting the client's RESUME ("ms", median); "lost" is
// the most dispatches one iteration lost (sequences never written to the
// client within 5 s of the RESUME, or lost with the session's end), and
// "runs-with-loss" how many of the "runs" iterations lost any. Each loss is
// logged with the session's end reason.
func BenchmarkDropToResumed(b *testing.B) {
	for _, cl := range e2eClients {
		b.Run(cl.name, func(b *testing.B) {
			var took []time.Duration
			lost, lossy := 0, 0
			for i := range b.N {
				srv := newE2EFake(b)
				c := cl.start(b, srv)
				channel := srv.Guilds()[0].ChannelID
				emit := func(what string) {
					for j := range 5 {
						if _, err := srv.EmitMessage(channel, fmt.Sprintf("%s %d/%d", what, i, j)); err != nil {
							b.Fatal(err)
						}
					}
				}
				emit("before")
				sess := srv.Ledger().Sessions()[0].ID
				start := time.Now()
				if err := srv.DropConnections(); err != nil {
					b.Fatal(err)
				}
				emit("during")
				var resumedAt time.Time
				waitUntil(b, "a RESUME", func() bool {
					s, _ := srv.Ledger().Session(sess)
					if len(s.Resumes) == 0 {
						return false
					}
					resumedAt = s.Resumes[0].At
					return true
				})
				took = append(took, resumedAt.Sub(start))
				emit("after")
				// Bounded: what is still unwritten after it counts as lost.
				deadline := time.Now().Add(5 * time.Second)
				for len(srv.Ledger().Undelivered(sess)) > 0 && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
				undelivered, gone := srv.Ledger().Undelivered(sess), srv.Ledger().Lost(sess)
				if n := len(union(undelivered, gone)); n > 0 {
					rec, _ := srv.Ledger().Session(sess)
					b.Logf("iteration %d: %d dispatches lost: undelivered %v, lost %v (session ended %v: %q)",
						i, n, undelivered, gone, rec.Ended, rec.EndReason)
					lost = max(lost, n)
					lossy++
				}
				c.close()
				srv.Close()
			}
			b.ReportMetric(float64(median(took))/float64(time.Millisecond), "ms")
			b.ReportMetric(float64(lost), "lost")
			b.ReportMetric(float64(lossy), "runs-with-loss")
			b.ReportMetric(float64(b.N), "runs")
		})
	}
}
