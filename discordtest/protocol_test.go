package discordtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestIdentifyRulesCloseCodes(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		token   string // "" means the right one
		shard   [2]int
		intents any
		want    int // close code; 0 means READY
		outcome IdentifyOutcome
	}{
		{"accepted", Options{}, "", [2]int{0, 1}, IntentGuilds, 0, IdentifyAccepted},
		{"token with Bot prefix", Options{}, "Bot " + DefaultToken, [2]int{0, 1}, IntentGuilds, 0, IdentifyAccepted},
		{"bad token", Options{}, "nope", [2]int{0, 1}, IntentGuilds, CloseAuthenticationFailed, IdentifyBadToken},
		{"shard id out of range", Options{}, "", [2]int{2, 2}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"zero shards", Options{}, "", [2]int{0, 0}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"negative shard", Options{}, "", [2]int{-1, 2}, IntentGuilds, CloseInvalidShard, IdentifyInvalidShard},
		{"too many guilds", Options{Guilds: 5, MaxGuildsPerShard: 2}, "", [2]int{0, 1}, IntentGuilds, CloseShardingRequired, IdentifyShardingRequired},
		{"enough shards", Options{Guilds: 5, MaxGuildsPerShard: 4}, "", [2]int{0, 2}, IntentGuilds, 0, IdentifyAccepted},
		{"missing intents", Options{}, "", [2]int{0, 1}, nil, CloseInvalidIntents, IdentifyInvalidIntents},
		{"unknown intent bit", Options{}, "", [2]int{0, 1}, int64(1 << 30), CloseInvalidIntents, IdentifyInvalidIntents},
		{"privileged not enabled", Options{}, "", [2]int{0, 1}, IntentGuilds | IntentGuildMembers, CloseDisallowedIntents, IdentifyDisallowedIntents},
		{"message content not enabled", Options{PrivilegedIntents: IntentGuildMembers}, "", [2]int{0, 1}, IntentMessageContent, CloseDisallowedIntents, IdentifyDisallowedIntents},
		{"privileged enabled", Options{PrivilegedIntents: IntentsPrivileged}, "", [2]int{0, 1}, IntentsKnown, 0, IdentifyAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Clock = clock.NewFake(time.Time{})
			srv := newTestServer(t, tt.opts)
			c := dialRaw(t, srv, "/gateway", "")
			c.hello()
			tok := tt.token
			if tok == "" {
				tok = srv.Token()
			}
			d := map[string]any{"token": tok, "shard": tt.shard, "properties": map[string]string{}}
			if tt.intents != nil {
				d["intents"] = tt.intents
			}
			c.send(OpIdentify, d)
			if tt.want == 0 {
				c.expect(OpDispatch, "READY")
			} else if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
			ids := srv.Ledger().Identifies()
			if len(ids) != 1 || ids[0].Outcome != tt.outcome {
				t.Fatalf("identify record %+v, want outcome %s", ids, tt.outcome)
			}
			if tt.want != 0 {
				conn, _ := srv.Ledger().Connection(1)
				waitFor(t, "the ledger to record the close", func() bool {
					conn, _ = srv.Ledger().Connection(1)
					return conn.Closed
				})
				if conn.CloseKind != ClosedByServer || conn.CloseCode != tt.want {
					t.Fatalf("ledger close %s %d", conn.CloseKind, conn.CloseCode)
				}
			}
		})
	}
}

func TestProtocolErrorsCloseCodes(t *testing.T) {
	big := `{"op":1,"d":null,"pad":"` + strings.Repeat("x", maxPayloadBytes) + `"}`
	tests := []struct {
		name  string
		query string
		steps func(c *rawClient, srv *Server)
		want  int
	}{
		{"unknown opcode", "", func(c *rawClient, _ *Server) { c.send(5, nil) }, CloseUnknownOpcode},
		{"server-only opcode", "", func(c *rawClient, _ *Server) { c.send(OpHeartbeatACK, nil) }, CloseUnknownOpcode},
		{"invalid JSON", "", func(c *rawClient, _ *Server) { c.sendRaw([]byte("{not json")) }, CloseDecodeError},
		{"payload over 4096 bytes", "", func(c *rawClient, _ *Server) { c.sendRaw([]byte(big)) }, CloseDecodeError},
		{"binary frame", "", func(c *rawClient, _ *Server) {
			_ = c.ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
		}, CloseDecodeError},
		{"presence before identify", "", func(c *rawClient, _ *Server) { c.send(OpPresenceUpdate, map[string]any{}) }, CloseNotAuthenticated},
		{"identify twice", "", func(c *rawClient, srv *Server) {
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
			c.expect(OpDispatch, "READY")
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
		}, CloseAlreadyAuthenticated},
		{"resume after identify", "", func(c *rawClient, srv *Server) {
			c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
			r := c.expect(OpDispatch, "READY")
			var rd readyData
			_ = json.Unmarshal(r.D, &rd)
			c.send(OpResume, map[string]any{"token": srv.Token(), "session_id": rd.SessionID, "seq": 1})
		}, CloseAlreadyAuthenticated},
		{"heartbeat with a string", "", func(c *rawClient, _ *Server) { c.send(OpHeartbeat, "seven") }, CloseDecodeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
			c := dialRaw(t, srv, "/gateway", tt.query)
			c.hello()
			tt.steps(c, srv)
			if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
			v := srv.Ledger().Violations()
			if len(v) != 1 || v[0].Kind != ViolationProtocol {
				t.Fatalf("violations %+v, want one protocol violation", v)
			}
		})
	}
}

func TestConnectQueryChecks(t *testing.T) {
	tests := []struct {
		query string
		want  int
	}{
		{"v=8&encoding=json", CloseInvalidAPIVersion},
		{"v=11&encoding=json", CloseInvalidAPIVersion},
		{"v=abc", CloseInvalidAPIVersion},
		{"v=10&encoding=etf", CloseDecodeError},
		{"v=9&encoding=json", 0},
		{"encoding=json", 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
			c := dialRaw(t, srv, "/gateway", tt.query)
			if tt.want == 0 {
				c.hello()
				return
			}
			if code := c.expectClose(); code != tt.want {
				t.Fatalf("close code %d, want %d", code, tt.want)
			}
		})
	}
}

func TestWithheldHelloLeavesConnectionSilent(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	if err := srv.WithholdHello(0); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, srv, "/gateway", "")
	c.expectNoFrame(200 * time.Millisecond)
	srv.ClearFaults()
	c2 := dialRaw(t, srv, "/gateway", "")
	c2.hello()
}
