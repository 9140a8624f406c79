package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// refuseTransport fails every request the relay does not answer itself, so
// a test proves no REST call leaves the process.
type refuseTransport struct{}

func (refuseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return nil, errors.New("unexpected REST call to " + req.URL.Path)
}

func readyFrame(session string, seq int64) []byte {
	return dispatchFrame("READY", seq, []byte(`{"v":9,"session_id":"`+session+`","resume_gateway_url":"ws://127.0.0.1:1","user":{"id":"1","username":"bot"},"guilds":[]}`))
}

func messageFrame(seq int64, id string) []byte {
	return dispatchFrame("MESSAGE_CREATE", seq, []byte(`{"id":"`+id+`","channel_id":"9","content":"hi","author":{"id":"2"}}`))
}

func newRelaySession(t *testing.T, r *Relay) *discordgo.Session {
	t.Helper()
	s, err := discordgo.New("Bot test-token")
	if err != nil {
		t.Fatal(err)
	}
	s.ShouldReconnectOnError = false
	s.Compress = false
	s.Dialer = r.Dialer()
	s.Client = &http.Client{Transport: r.Transport(refuseTransport{})}
	s.LogLevel = -1
	return s
}

func TestRelayServesDiscordgoOpenAndDeliversInOrder(t *testing.T) {
	r := NewRelay(RelayOptions{})
	defer r.Close()
	s := newRelaySession(t, r)

	var mu sync.Mutex
	var got []string
	all := make(chan struct{})
	s.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.ID)
		if len(got) == 50 {
			close(all)
		}
	})
	readyCh := make(chan string, 2)
	s.AddHandler(func(_ *discordgo.Session, rd *discordgo.Ready) { readyCh <- rd.SessionID })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.SetReady(ctx, readyFrame("abc", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	if id := <-readyCh; id != "abc" {
		t.Fatalf("READY session %q", id)
	}
	for i := 0; i < 50; i++ {
		if err := r.Deliver(ctx, messageFrame(int64(i+2), "m"+string(rune('A'+i%26))+strings.Repeat("x", i/26))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-ctx.Done():
		t.Fatal("not every dispatch reached the handler")
	}
	// A re-identify upstream reaches the attached Session as a new READY.
	if err := r.SetReady(ctx, readyFrame("def", 1)); err != nil {
		t.Fatal(err)
	}
	if id := <-readyCh; id != "def" {
		t.Fatalf("second READY session %q", id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 50 {
		t.Fatalf("got %d messages", len(got))
	}
}

func TestRelayForwardsBotSends(t *testing.T) {
	fwd := make(chan []byte, 4)
	r := NewRelay(RelayOptions{Forward: func(f []byte) { fwd <- f }})
	defer r.Close()
	s := newRelaySession(t, r)
	ctx := context.Background()
	_ = r.SetReady(ctx, readyFrame("abc", 1))
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.UpdateGameStatus(0, "chess"); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-fwd:
		p, err := DecodePayload(f)
		if err != nil || p.Op != OpPresenceUpdate || !strings.Contains(string(p.D), "chess") {
			t.Fatalf("forwarded %s (%v)", f, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("presence update not forwarded")
	}
}

func TestRelayDeliverWaitsForAttachAndHonoursContext(t *testing.T) {
	r := NewRelay(RelayOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Deliver(ctx, messageFrame(2, "x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Deliver without a Session = %v, want context.Canceled", err)
	}
	r.Close()
	if err := r.Deliver(context.Background(), messageFrame(2, "x")); !errors.Is(err, ErrRelayClosed) {
		t.Fatalf("Deliver after Close = %v", err)
	}
}

func TestIsGatewayPath(t *testing.T) {
	for p, want := range map[string]bool{
		"/api/v9/gateway":     true,
		"/api/v10/gateway":    true,
		"/api/gateway":        true,
		"/api/v9/gateway/bot": false,
		"/api/v9/users/@me":   false,
		"/api/vx/gateway":     false,
		"/api/v/gateway":      false,
		"/other/v9/gateway":   false,
	} {
		if got := isGatewayPath(p); got != want {
			t.Errorf("isGatewayPath(%q) = %v, want %v", p, got, want)
		}
	}
}
