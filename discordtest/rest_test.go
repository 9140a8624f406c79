package discordtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestRESTGatewayAndGatewayBot(t *testing.T) {
	for _, ver := range []string{"9", "10"} {
		t.Run("v"+ver, func(t *testing.T) {
			srv := newTestServer(t, Options{Guilds: 2500, MaxConcurrency: 16, SessionStartTotal: 50})
			c := srv.Client()
			var gw struct{ URL string }
			resp := getJSON(t, c, "https://discord.com/api/v"+ver+"/gateway", "", &gw)
			if resp.StatusCode != 200 || gw.URL != srv.GatewayURL() {
				t.Fatalf("/gateway: %d %q, want 200 %q", resp.StatusCode, gw.URL, srv.GatewayURL())
			}
			var bot struct {
				URL               string
				Shards            int
				SessionStartLimit struct {
					Total, Remaining, ResetAfter, MaxConcurrency int
				} `json:"session_start_limit"`
			}
			var raw map[string]any
			resp = getJSON(t, c, srv.URL()+"/api/v"+ver+"/gateway/bot", "Bot "+srv.Token(), &raw)
			b, _ := json.Marshal(raw)
			if err := json.Unmarshal(bytes.ReplaceAll(b, []byte("session_start_limit"), []byte("SessionStartLimit")), &bot); err != nil {
				t.Fatal(err)
			}
			ssl, _ := raw["session_start_limit"].(map[string]any)
			if resp.StatusCode != 200 || bot.URL != srv.GatewayURL() || bot.Shards != 3 ||
				ssl["total"] != 50.0 || ssl["remaining"] != 50.0 || ssl["max_concurrency"] != 16.0 ||
				ssl["reset_after"] != float64(DefaultSessionStartReset.Milliseconds()) {
				t.Fatalf("/gateway/bot = %d %s", resp.StatusCode, b)
			}
		})
	}
}

func TestRESTAuthorization(t *testing.T) {
	srv := newTestServer(t, Options{})
	c := srv.Client()
	tests := []struct {
		name, auth string
		want       int
	}{
		{"bot token", "Bot " + srv.Token(), 200},
		{"no header", "", 401},
		{"missing Bot prefix", srv.Token(), 401},
		{"wrong token", "Bot nope", 401},
		{"bearer", "Bearer " + srv.Token(), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var u User
			var e apiError
			var out any = &u
			if tt.want != 200 {
				out = &e
			}
			resp := getJSON(t, c, srv.RESTURL()+"/users/@me", tt.auth, out)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if tt.want == 200 && (u.ID != defaultBotUserID || !u.Bot) {
				t.Fatalf("user %+v", u)
			}
			if tt.want == 401 && e.Message != "401: Unauthorized" {
				t.Fatalf("body %+v", e)
			}
		})
	}
}

func doJSON(t *testing.T, c *http.Client, method, url, auth string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRESTMessagesCreateGetEdit(t *testing.T) {
	srv := newTestServer(t, Options{RESTBucketLimit: 100})
	c, auth := srv.Client(), "Bot "+srv.Token()
	ch := srv.Guilds()[0].ChannelID
	base := srv.RESTURL() + "/channels/" + ch + "/messages"

	resp, b := doJSON(t, c, "POST", base, auth, map[string]string{"content": "hello"})
	var m Message
	if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil || m.Content != "hello" || m.ChannelID != ch || m.Author.ID != defaultBotUserID {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	resp, b = doJSON(t, c, "GET", base+"/"+m.ID, auth, nil)
	var got Message
	if resp.StatusCode != 200 || json.Unmarshal(b, &got) != nil || got.ID != m.ID || got.Content != "hello" {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}
	resp, b = doJSON(t, c, "PATCH", base+"/"+m.ID, auth, map[string]string{"content": "edited"})
	var ed Message
	if resp.StatusCode != 200 || json.Unmarshal(b, &ed) != nil || ed.Content != "edited" || ed.EditedTimestamp == nil {
		t.Fatalf("edit: %d %s", resp.StatusCode, b)
	}
	tests := []struct {
		name, method, url string
		body              any
		want, code        int
	}{
		{"unknown channel", "POST", srv.RESTURL() + "/channels/1/messages", map[string]string{"content": "x"}, 404, 10003},
		{"empty message", "POST", base, map[string]string{"content": ""}, 400, 50006},
		{"unknown message", "GET", base + "/42", nil, 404, 10008},
		{"unknown route", "GET", srv.RESTURL() + "/guilds/1", nil, 404, 0},
		{"wrong method", "DELETE", base + "/" + m.ID, nil, 405, 0},
		{"old API version", "GET", srv.URL() + "/api/v6/gateway", nil, 404, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := doJSON(t, c, tt.method, tt.url, auth, tt.body)
			var e apiError
			_ = json.Unmarshal(b, &e)
			if resp.StatusCode != tt.want || e.Code != tt.code {
				t.Fatalf("%d %s, want %d code %d", resp.StatusCode, b, tt.want, tt.code)
			}
		})
	}
}

func TestRESTRateLimitHeadersAnd429(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, RESTBucketLimit: 2, RESTBucketWindow: 2 * time.Second, GlobalLimit: 100})
	c, auth := srv.Client(), "Bot "+srv.Token()
	u := srv.RESTURL() + "/users/@me"
	for i, wantRemaining := range []string{"1", "0"} {
		resp := getJSON(t, c, u, auth, nil)
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Remaining") != wantRemaining ||
			h.Get("X-RateLimit-Reset-After") != "2.000" || h.Get("X-RateLimit-Bucket") == "" {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, h)
		}
		reset, err := strconv.ParseFloat(h.Get("X-RateLimit-Reset"), 64)
		if err != nil || int64(reset*1000) != fc.Now().Add(2*time.Second).UnixMilli() {
			t.Fatalf("X-RateLimit-Reset %q, want %d ms", h.Get("X-RateLimit-Reset"), fc.Now().Add(2*time.Second).UnixMilli())
		}
	}
	fc.Advance(500 * time.Millisecond)
	var body rateLimitBody
	resp := getJSON(t, c, u, auth, &body)
	h := resp.Header
	if resp.StatusCode != 429 || body.RetryAfter != 1.5 || body.Global || body.Message == "" ||
		h.Get("X-RateLimit-Scope") != "user" || h.Get("Retry-After") != "2" || h.Get("X-RateLimit-Global") != "" ||
		h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset-After") != "1.500" {
		t.Fatalf("429: %d %+v %v", resp.StatusCode, body, h)
	}
	v := srv.Ledger().Violations()
	if len(v) != 1 || v[0].Kind != ViolationRESTBucket {
		t.Fatalf("violations %+v", v)
	}
	// Another major parameter has its own count; the window resets.
	fc.Advance(1500 * time.Millisecond)
	if resp := getJSON(t, c, u, auth, nil); resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != "1" {
		t.Fatalf("after reset: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestRESTBucketsArePerChannel(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), Guilds: 2, RESTBucketLimit: 1, GlobalLimit: 100})
	c, auth := srv.Client(), "Bot "+srv.Token()
	g := srv.Guilds()
	for _, ch := range []string{g[0].ChannelID, g[1].ChannelID} {
		resp, b := doJSON(t, c, "POST", srv.RESTURL()+"/channels/"+ch+"/messages", auth, map[string]string{"content": "x"})
		if resp.StatusCode != 200 {
			t.Fatalf("first post in %s: %d %s", ch, resp.StatusCode, b)
		}
	}
	resp, _ := doJSON(t, c, "POST", srv.RESTURL()+"/channels/"+g[0].ChannelID+"/messages", auth, map[string]string{"content": "x"})
	if resp.StatusCode != 429 {
		t.Fatalf("second post in the same channel: %d, want 429", resp.StatusCode)
	}
}

func TestRESTGlobalLimit(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), GlobalLimit: 3, RESTBucketLimit: 100})
	c, auth := srv.Client(), "Bot "+srv.Token()
	for i := 0; i < 3; i++ {
		if resp := getJSON(t, c, srv.RESTURL()+"/users/@me", auth, nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	var body rateLimitBody
	resp := getJSON(t, c, srv.RESTURL()+"/gateway/bot", auth, &body)
	h := resp.Header
	if resp.StatusCode != 429 || !body.Global || h.Get("X-RateLimit-Global") != "true" || h.Get("X-RateLimit-Scope") != "global" ||
		h.Get("Retry-After") == "" || body.RetryAfter <= 0 {
		t.Fatalf("global 429: %d %+v %v", resp.StatusCode, body, h)
	}
	if v := srv.Ledger().Violations(); len(v) != 1 || v[0].Kind != ViolationRESTGlobal {
		t.Fatalf("violations %+v", v)
	}
}

func TestRESTInvalidRequestsEarnABan(t *testing.T) {
	fc := clock.NewFake(time.Time{})
	srv := newTestServer(t, Options{Clock: fc, InvalidRequestLimit: 3, BanDuration: time.Minute})
	c := srv.Client()
	for i := 0; i < 3; i++ {
		getJSON(t, c, srv.RESTURL()+"/users/@me", "Bot wrong", nil)
	}
	resp, b := doJSON(t, c, "GET", srv.RESTURL()+"/users/@me", "Bot "+srv.Token(), nil)
	if resp.StatusCode != 429 || strings.TrimSpace(string(b)) != "error code: 1015" || resp.Header.Get("X-RateLimit-Limit") != "" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("banned: %d %q %v", resp.StatusCode, b, resp.Header)
	}
	if v := srv.Ledger().Violations(); len(v) != 1 || v[0].Kind != ViolationInvalidRequests {
		t.Fatalf("violations %+v", v)
	}
	fc.Advance(time.Minute)
	if resp := getJSON(t, c, srv.RESTURL()+"/users/@me", "Bot "+srv.Token(), nil); resp.StatusCode != 200 {
		t.Fatalf("after the ban: %d", resp.StatusCode)
	}
}
