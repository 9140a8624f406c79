package chaos_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/lifeline-bot/lifeline"
	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/discordtest"
)

// garbleREST answers some REST routes with bodies that are not JSON, as a
// proxy or a CDN in trouble would; every other request goes to next.
type garbleREST struct {
	next http.RoundTripper
	mu   sync.Mutex
	hits map[string]int
}

func (g *garbleREST) RoundTrip(r *http.Request) (*http.Response, error) {
	var status int
	var body, ctype string
	switch {
	case strings.HasSuffix(r.URL.Path, "/users/@me"):
		status, ctype, body = 200, "text/html", "<html><body>Welcome to the captive portal</body></html>"
	case strings.HasSuffix(r.URL.Path, "/channels/999/messages"):
		status, ctype, body = 502, "text/html", "<html><h1>502 Bad Gateway</h1></html>"
	case strings.HasSuffix(r.URL.Path, "/channels/998/messages"):
		status, ctype, body = 200, "application/json", `{"id": "1", "content": "cut sh`
	default:
		return g.next.RoundTrip(r)
	}
	g.mu.Lock()
	g.hits[r.URL.Path]++
	g.mu.Unlock()
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := http.Header{}
	h.Set("Content-Type", ctype)
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Request: r,
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

// REST answers that are not JSON (an HTML page with 200, an HTML 502, JSON
// cut short) reach the bot as errors that say so, carry no token, and are
// counted in the Snapshot; the gateway session is untouched and messages
// keep arriving.
func TestRESTBodiesThatAreNotJSON(t *testing.T) {
	srv, err := discordtest.NewServer(discordtest.Options{Scale: 50, Token: badRESTToken})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	g := &garbleREST{next: srv.Transport(), hits: map[string]int{}}
	l, err := lifeline.New(lifeline.Config{Token: srv.Token(), IdentifyWindow: srv.IdentifyWindow(), TickInterval: 20 * time.Millisecond,
		Tune: func(c *conn.Config) { c.HandshakeTimeout = 2 * time.Second }},
		lifeline.WithNetwork(g, srv.Dialer()))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	l.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		mu.Lock()
		got[m.Content] = true
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	s := l.Session()
	s.MaxRestRetries = 0

	var errs []error
	if _, err := s.User("@me"); !errors.Is(err, discordgo.ErrJSONUnmarshal) {
		t.Errorf("an HTML page with 200: %v, want ErrJSONUnmarshal", err)
	} else {
		errs = append(errs, err)
	}
	// discordgo retries a 502 (none left here) and says what it got.
	if _, err := s.ChannelMessageSend("999", "hello"); err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
		t.Errorf("an HTML 502: %v, want an error naming the status", err)
	} else {
		errs = append(errs, err)
	}
	if _, err := s.ChannelMessageSend("998", "hello"); !errors.Is(err, discordgo.ErrJSONUnmarshal) {
		t.Errorf("JSON cut short: %v, want ErrJSONUnmarshal", err)
	} else {
		errs = append(errs, err)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), srv.Token()) {
			t.Errorf("an error carries the token: %v", err)
		}
	}

	// The failures are seen, the session is not.
	deadline := time.Now().Add(15 * time.Second)
	for l.Snapshot().REST.ServerErrors < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the next tick, bounded
	}
	if snap := l.Snapshot(); snap.REST.ServerErrors < 1 || !snap.Gateway.Connected {
		t.Errorf("snapshot REST %+v, gateway connected %t", snap.REST, snap.Gateway.Connected)
	}
	if _, err := srv.EmitMessage(srv.Guilds()[0].ChannelID, "still here"); err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		mu.Lock()
		ok := got["still here"]
		mu.Unlock()
		if ok {
			break
		}
		time.Sleep(10 * time.Millisecond) // a live connection, bounded
	}
	mu.Lock()
	defer mu.Unlock()
	if !got["still here"] {
		t.Fatal("a message after the bad REST answers never reached the handler")
	}
	if c := l.Connection(); c.State() != conn.Ready {
		t.Fatalf("state %s", c.State())
	}
}

const badRESTToken = "MTExMTExMTExMTExMTExMTEx.GbAdIn.put_token_never_in_an_error_000"
