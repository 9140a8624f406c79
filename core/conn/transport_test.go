package conn

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

const testToken = "Bot MTIzNDU2Nzg5MDEyMzQ1Njc4.SECRET.TOKEN"

// fakeRT answers requests without any network; it records what it got
// and can move a fake clock to make latency deterministic.
type fakeRT struct {
	mu      sync.Mutex
	got     []*http.Request
	clock   *clock.Fake
	latency time.Duration
	respond func(*http.Request) (*http.Response, error)
}

func (f *fakeRT) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.got = append(f.got, r)
	f.mu.Unlock()
	if f.clock != nil {
		f.clock.Advance(f.latency)
	}
	if f.respond != nil {
		return f.respond(r)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
}

type restRecorder struct {
	mu  sync.Mutex
	res []RESTResult
}

func (r *restRecorder) ObserveREST(x RESTResult) {
	r.mu.Lock()
	r.res = append(r.res, x)
	r.mu.Unlock()
}

func (r *restRecorder) all() []RESTResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RESTResult(nil), r.res...)
}

func TestTransportRewrite(t *testing.T) {
	tests := []struct {
		name, base, in, want string
		rewritten            bool
	}{
		{"api", "http://127.0.0.1:5555", "https://discord.com/api/v9/gateway?v=9&x=1", "http://127.0.0.1:5555/api/v9/gateway?v=9&x=1", true},
		{"case-insensitive host", "http://127.0.0.1:5555", "https://DISCORD.com/api/v9/users/@me", "http://127.0.0.1:5555/api/v9/users/@me", true},
		{"legacy host", "http://127.0.0.1:5555", "https://discordapp.com/api/v9/gateway", "http://127.0.0.1:5555/api/v9/gateway", true},
		{"cdn", "http://127.0.0.1:5555", "https://cdn.discordapp.com/avatars/1/abc.png", "http://127.0.0.1:5555/avatars/1/abc.png", true},
		{"media", "http://127.0.0.1:5555", "https://media.discordapp.net/attachments/1/2/x.png", "http://127.0.0.1:5555/attachments/1/2/x.png", true},
		{"status", "http://127.0.0.1:5555", "https://status.discord.com/api/v2/scheduled-maintenances/active.json", "http://127.0.0.1:5555/api/v2/scheduled-maintenances/active.json", true},
		{"explicit port", "http://127.0.0.1:5555", "https://discord.com:443/api/v9/gateway", "http://127.0.0.1:5555/api/v9/gateway", true},
		{"base path", "http://localhost:7/fake/", "https://discord.com/api/v9/channels/1/messages", "http://localhost:7/fake/api/v9/channels/1/messages", true},
		{"escaped path", "http://[::1]:7/p", "https://discord.com/api/v9/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
			"http://[::1]:7/p/api/v9/channels/1/messages/2/reactions/%F0%9F%91%8D/@me", true},
		{"https base", "https://discord-proxy.example", "https://discord.com/api/v9/gateway", "https://discord-proxy.example/api/v9/gateway", true},
		{"other host untouched", "http://127.0.0.1:5555", "https://example.com/api/v9/gateway", "https://example.com/api/v9/gateway", false},
		{"lookalike untouched", "http://127.0.0.1:5555", "https://discord.com.evil.test/x", "https://discord.com.evil.test/x", false},
		{"no base url", "", "https://discord.com/api/v9/gateway", "https://discord.com/api/v9/gateway", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &fakeRT{}
			rec := &restRecorder{}
			tr, err := NewTransport(TransportSettings{Base: rt, Observer: rec, BaseURL: tt.base})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", tt.in, nil)
			req.Header.Set("Authorization", testToken)
			origURL, origHost := req.URL.String(), req.Host
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			sent := rt.got[0]
			if sent.URL.String() != tt.want {
				t.Errorf("sent to %s, want %s", sent.URL, tt.want)
			}
			if tt.rewritten && sent.Host != "" {
				t.Errorf("rewritten request keeps Host %q", sent.Host)
			}
			if sent.Header.Get("Authorization") != testToken {
				t.Error("Authorization header not passed on")
			}
			if req.URL.String() != origURL || req.Host != origHost {
				t.Errorf("original request modified: %s host %q", req.URL, req.Host)
			}
			if got := rec.all(); len(got) != 1 || got[0].Rewritten != tt.rewritten || got[0].Status != 200 {
				t.Errorf("results %+v", got)
			}
		})
	}
}

func TestNewTransportErrors(t *testing.T) {
	tests := []struct {
		base     string
		sentinel error
	}{
		{"http://discord-fake.example:8080", ErrInsecureBaseURL},
		{"http://10.0.0.5:8080", ErrInsecureBaseURL},
		{"ftp://127.0.0.1", nil},
		{"/relative", nil},
		{"http://127.0.0.1:1/?q=1", nil},
		{"http://[::1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			_, err := NewTransport(TransportSettings{BaseURL: tt.base})
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("err %v does not wrap %v", err, tt.sentinel)
			}
		})
	}
	for _, ok := range []string{"http://127.0.0.1:1", "http://localhost:2", "http://[::1]:3", "https://proxy.example"} {
		if _, err := NewTransport(TransportSettings{BaseURL: ok}); err != nil {
			t.Errorf("%s rejected: %v", ok, err)
		}
	}
}

func TestTransportObserves(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	errDown := errors.New("connection refused")
	tests := []struct {
		name    string
		respond func(*http.Request) (*http.Response, error)
		check   func(t *testing.T, r RESTResult, resp *http.Response, err error)
	}{
		{"ok", nil, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			if r.Status != 200 || r.Err != nil || r.RateLimit != nil || r.Latency != 120*time.Millisecond {
				t.Errorf("%+v", r)
			}
		}},
		{"server error", func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 502, Header: http.Header{}, Body: http.NoBody}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			if r.Status != 502 || r.Err != nil {
				t.Errorf("%+v", r)
			}
		}},
		{"transport error", func(r *http.Request) (*http.Response, error) { return nil, errDown },
			func(t *testing.T, r RESTResult, resp *http.Response, err error) {
				if r.Status != 0 || r.Err != errDown || err != errDown || r.Latency != 120*time.Millisecond {
					t.Errorf("%+v, returned %v", r, err)
				}
			}},
		{"429 discord", func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Retry-After", "2")
			h.Set("X-RateLimit-Scope", "user")
			h.Set("X-RateLimit-Bucket", "abcd1234")
			body := `{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}`
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader(body))}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			rl := r.RateLimit
			if rl == nil || rl.RetryAfter != 1500*time.Millisecond || rl.Global || rl.Scope != "user" || rl.Bucket != "abcd1234" || rl.Cloudflare {
				t.Errorf("%+v", rl)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != `{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}` {
				t.Errorf("caller read %q", b)
			}
		}},
		{"429 global from body", func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("X-RateLimit-Scope", "global")
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader(`{"retry_after":0.25,"global":true}`))}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			rl := r.RateLimit
			if rl == nil || !rl.Global || rl.RetryAfter != 250*time.Millisecond || rl.Scope != "global" || rl.Cloudflare {
				t.Errorf("%+v", rl)
			}
		}},
		{"429 header only", func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Retry-After", "3")
			h.Set("X-RateLimit-Global", "true")
			return &http.Response{StatusCode: 429, Header: h, Body: http.NoBody}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			rl := r.RateLimit
			if rl == nil || !rl.Global || rl.RetryAfter != 3*time.Second || rl.Cloudflare {
				t.Errorf("%+v", rl)
			}
		}},
		{"429 cloudflare ban", func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			h.Set("Content-Type", "text/plain")
			h.Set("Retry-After", "600")
			return &http.Response{StatusCode: 429, Header: h, Body: io.NopCloser(strings.NewReader("error code: 1015"))}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			rl := r.RateLimit
			if rl == nil || !rl.Cloudflare || rl.RetryAfter != 10*time.Minute {
				t.Errorf("%+v", rl)
			}
			if b, _ := io.ReadAll(resp.Body); string(b) != "error code: 1015" {
				t.Errorf("caller read %q", b)
			}
		}},
		{"429 large body read whole", func(r *http.Request) (*http.Response, error) {
			body := `{"retry_after": 1, "pad": "` + strings.Repeat("z", 100000) + `"}`
			return &http.Response{StatusCode: 429, Header: http.Header{"X-Ratelimit-Scope": {"shared"}}, Body: io.NopCloser(strings.NewReader(body))}, nil
		}, func(t *testing.T, r RESTResult, resp *http.Response, err error) {
			b, _ := io.ReadAll(resp.Body)
			if len(b) != 100000+len(`{"retry_after": 1, "pad": ""}`) {
				t.Errorf("caller read %d bytes", len(b))
			}
			if rl := r.RateLimit; rl == nil || rl.RetryAfter != 0 || rl.Scope != "shared" || rl.Cloudflare {
				t.Errorf("%+v (body beyond the peek limit is not parsed)", rl)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &fakeRT{clock: fake, latency: 120 * time.Millisecond, respond: tt.respond}
			rec := &restRecorder{}
			tr, err := NewTransport(TransportSettings{Base: rt, Observer: rec, Clock: fake})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", "https://discord.com/api/v9/webhooks/111/SeCrEtWeBhOoKtOkEn/messages/222?wait=true", nil)
			req.Header.Set("Authorization", testToken)
			resp, rerr := tr.RoundTrip(req)
			got := rec.all()
			if len(got) != 1 {
				t.Fatalf("%d results", len(got))
			}
			r := got[0]
			if r.Method != "POST" || r.Route != "/api/v9/webhooks/:id/:token/messages/:id" {
				t.Errorf("method %s route %s", r.Method, r.Route)
			}
			if dump := fmt.Sprintf("%+v %+v", r, r.RateLimit); strings.Contains(dump, "SECRET") || strings.Contains(dump, "SeCrEt") || strings.Contains(dump, "wait") {
				t.Errorf("result leaks a secret or the query: %s", dump)
			}
			tt.check(t, r, resp, rerr)
			if resp != nil {
				resp.Body.Close()
			}
		})
	}
}

func TestSanitizeRoute(t *testing.T) {
	tests := map[string]string{
		"":                                    "/",
		"/api/v9/gateway/bot":                 "/api/v9/gateway/bot",
		"/api/v9/channels/123456789012345678": "/api/v9/channels/:id",
		"/api/v9/channels/1/messages/2/reactions/%F0%9F%91%8D/@me":     "/api/v9/channels/:id/messages/:id/reactions/:x/@me",
		"/api/v9/interactions/99/aW50ZXJhY3Rpb246OTk6dG9rZW4/callback": "/api/v9/interactions/:id/:token/callback",
		"/api/v9/webhooks/5/lowercasetoken/messages/@original":         "/api/v9/webhooks/:id/:token/messages/@original",
		"/api/v9/guilds/1/audit-logs":                                  "/api/v9/guilds/:id/audit-logs",
		"/avatars/1/a_0123456789abcdef0123456789abcdef.png":            "/avatars/:id/a_0123456789abcdef0123456789abcdef.png",
		"/api/v9/users/@me/Channels":                                   "/api/v9/users/@me/:x",
		"/x/" + strings.Repeat("a", 41):                                "/x/:x",
		"/api/v9/applications/1/guilds/2/commands/3/permissions":       "/api/v9/applications/:id/guilds/:id/commands/:id/permissions",
	}
	for in, want := range tests {
		if got := SanitizeRoute(in); got != want {
			t.Errorf("SanitizeRoute(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTransportEndToEnd sends real requests through the default base
// transport to an httptest server on 127.0.0.1 standing in for Discord.
func TestTransportEndToEnd(t *testing.T) {
	var gotPath, gotAuth, gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotPath, gotAuth, gotHost = r.URL.RequestURI(), r.Header.Get("Authorization"), r.Host
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"url":"ws://127.0.0.1:1"}`))
	}))
	defer srv.Close()
	rec := &restRecorder{}
	tr, err := NewTransport(TransportSettings{Observer: rec, BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	if tr.base == http.DefaultTransport {
		t.Fatal("default base is http.DefaultTransport itself")
	}
	c := tr.Client(5 * time.Second)
	req, _ := http.NewRequest("GET", "https://discord.com/api/v9/gateway?compress=false", nil)
	req.Header.Set("Authorization", testToken)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"url":"ws://127.0.0.1:1"}` || gotPath != "/api/v9/gateway?compress=false" || gotAuth != testToken ||
		gotHost != strings.TrimPrefix(srv.URL, "http://") {
		t.Errorf("body %q path %q auth ok %v host %q", body, gotPath, gotAuth == testToken, gotHost)
	}
	if r := rec.all(); len(r) != 1 || r[0].Status != 200 || !r[0].Rewritten || r[0].Route != "/api/v9/gateway" {
		t.Errorf("results %+v", r)
	}
}

func ExampleNewTransport() {
	tr, err := NewTransport(TransportSettings{
		BaseURL: "http://127.0.0.1:8080", // the fake Discord
		Observer: RESTObserverFunc(func(r RESTResult) {
			fmt.Println(r.Method, r.Route, r.Status, r.Err != nil)
		}),
		Base: &fakeRT{}, // so the example needs no server
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := tr.Client(20 * time.Second) // give this to discordgo.Session.Client
	resp, err := client.Get("https://discord.com/api/v9/channels/81384788765712384/messages")
	if err == nil {
		resp.Body.Close()
	}
	_, err = NewTransport(TransportSettings{BaseURL: "http://fake.example"})
	fmt.Println(errors.Is(err, ErrInsecureBaseURL))
	// Output:
	// GET /api/v9/channels/:id/messages 200 false
	// true
}
