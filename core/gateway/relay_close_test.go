package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// discordgo's Session.Close stops its reader first (listen returns at the
// next message once the session's listening channel is closed) and then
// writes its close frame. A heartbeat the Session sent just before must
// therefore not leave the relay waiting for the Session to read the ACK
// before it takes the close frame: when the relay had a reader goroutine
// on an in-memory pipe, that deadlocked both until the watchdog abandoned
// Close (seen stopping shards right after their READY, before any upstream
// heartbeat round trip was known). The relay now answers within the
// Session's write and queues the ACK without waiting; this client plays
// that Session: it heartbeats, stops reading, and closes.
func TestRelayReaderNeverBlocksOnACKWhileClientCloses(t *testing.T) {
	r := NewRelay(RelayOptions{})
	defer r.Close()
	ws, _, err := r.Dialer().DialContext(context.Background(), "ws://lifeline-relay/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // HELLO
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, encode(OpHeartbeat, []byte("null"))); err != nil {
		t.Fatal(err)
	}
	// No more reads from here on, like discordgo's Close.
	deadline := time.Now().Add(5 * time.Second)
	if err := ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), deadline); err != nil {
		t.Fatalf("close frame not taken by the relay (its reader is stuck writing the ACK): %v", err)
	}
}
