package discordtest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
)

func TestHandshakeHelloIdentifyReadyGuilds(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{}), HeartbeatInterval: 41250 * time.Millisecond, Guilds: 6, MaxConcurrency: 2})
	for _, shard := range [][2]int{{0, 2}, {1, 2}} {
		c := dialRaw(t, srv, "/gateway", "")
		if iv := c.hello(); iv != 41250 {
			t.Fatalf("heartbeat_interval %d, want 41250", iv)
		}
		c.send(OpIdentify, identifyPayload(srv.Token(), shard, IntentGuilds, false))
		e := c.read()
		if e.Op != OpDispatch || e.typ() != "READY" || e.seq() != 1 {
			t.Fatalf("first frame after IDENTIFY: op %d %s s=%d, want READY s=1", e.Op, e.typ(), e.seq())
		}
		var r readyData
		_ = json.Unmarshal(e.D, &r)
		want := guildsForShard(srv.Guilds(), shard)
		if len(r.SessionID) != 32 || r.ResumeGatewayURL != srv.ResumeURL() || r.Shard != shard || r.V != 10 ||
			r.User.ID != defaultBotUserID || len(r.Guilds) != len(want) {
			t.Fatalf("READY %+v", r)
		}
		if len(want) == 0 {
			t.Fatal("test needs guilds on every shard")
		}
		for i, g := range want {
			e := c.read()
			var gc struct {
				ID          string
				Unavailable bool
			}
			_ = json.Unmarshal(e.D, &gc)
			if e.typ() != "GUILD_CREATE" || e.seq() != int64(i+2) || gc.ID != g.ID || gc.Unavailable {
				t.Fatalf("frame %d: %s s=%d %s, want GUILD_CREATE s=%d for %s", i, e.typ(), e.seq(), e.D, i+2, g.ID)
			}
			if ShardForGuild(g.ID, 2) != shard[0] {
				t.Fatalf("guild %s sent to shard %d", g.ID, shard[0])
			}
		}
	}
}

func TestHeartbeatIsAcknowledgedAndRecorded(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	c := dialRaw(t, srv, "/gateway", "")
	// A heartbeat before IDENTIFY is allowed, with d null.
	c.hello()
	c.send(OpHeartbeat, nil)
	if e := c.read(); e.Op != OpHeartbeatACK {
		t.Fatalf("got op %d, want ACK", e.Op)
	}
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
	r := c.expect(OpDispatch, "READY")
	var rd readyData
	_ = json.Unmarshal(r.D, &rd)
	c.send(OpHeartbeat, 1)
	c.expect(OpHeartbeatACK, "")
	rec, _ := srv.Ledger().Session(rd.SessionID)
	if rec.MaxAcked() != 1 || len(rec.Acks) != 1 || rec.Acks[0].Via != AckHeartbeat {
		t.Fatalf("acks %+v", rec.Acks)
	}
}

func TestIdentifyCompressSendsZlibFrames(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	c := dialRaw(t, srv, "/gateway", "")
	if e := c.read(); e.Op != OpHello || e.binary {
		t.Fatalf("HELLO op %d binary=%v, want plain text", e.Op, e.binary)
	}
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, true))
	e := c.read()
	if e.typ() != "READY" || !e.binary {
		t.Fatalf("READY binary=%v, want a zlib binary frame", e.binary)
	}
	c.send(OpHeartbeat, 1)
	if e := c.expect(OpHeartbeatACK, ""); !e.binary {
		t.Fatal("ACK after compress=true IDENTIFY not compressed")
	}
}

func TestZlibStreamTransportCompression(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	c := dialRaw(t, srv, "/gateway", "v=10&encoding=json&compress=zlib-stream")
	// One zlib context for the whole connection: read raw frames and feed
	// them to one inflater.
	var stream []byte
	var frames int
	mt, data, err := c.nextRaw(ioTimeout)
	if err != nil || mt != 2 {
		t.Fatalf("HELLO frame type %d err %v, want binary", mt, err)
	}
	stream = append(stream, data...)
	frames++
	c.send(OpIdentify, identifyPayload(srv.Token(), [2]int{0, 1}, IntentGuilds, false))
	_, data, err = c.nextRaw(ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	stream = append(stream, data...)
	frames++
	msgs := inflateStream(t, stream)
	if len(msgs) < frames || msgs[0].Op != OpHello || msgs[1].typ() != "READY" {
		t.Fatalf("inflated %d messages %+v", len(msgs), msgs)
	}
}

func TestResumeURLIsDistinct(t *testing.T) {
	srv := newTestServer(t, Options{Clock: clock.NewFake(time.Time{})})
	c := dialRaw(t, srv, "/gateway", "")
	r, _ := c.identify(srv, [2]int{0, 1})
	c.send(OpHeartbeat, 1)
	c.expect(OpHeartbeatACK, "")
	_ = c.ws.Close()
	waitFor(t, "the server to see the drop", func() bool { return srv.ActiveConnections() == 0 })
	rc := dialRaw(t, srv, "/resume", "")
	rc.hello()
	rc.send(OpResume, map[string]any{"token": srv.Token(), "session_id": r.SessionID, "seq": 1})
	rc.expect(OpDispatch, "RESUMED")
	conns := srv.Ledger().Connections()
	if len(conns) != 2 || conns[0].Path != "/gateway" || conns[1].Path != "/resume" {
		t.Fatalf("paths %+v", conns)
	}
}
