package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/lifeline-bot/lifeline/core/clock"
)

// closeCodeOf reads until the client's close frame and returns its code
// (-1 if the connection dropped without one).
func closeCodeOf(ws *websocket.Conn) int {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return -1
		}
	}
}

// gatewayGoroutines counts the goroutines running this package's
// non-test code.
func gatewayGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, file := range []string{"/core/gateway/conn.go:", "/core/gateway/relay.go:", "/core/gateway/downconn.go:"} {
			if strings.Contains(g, file) {
				n++
				break
			}
		}
	}
	return n
}

// TestConnIdleHoldsOneGoroutine: a READY connection at rest is Run's own
// goroutine parked on the socket, and no other (heartbeats and the zombie
// check are timers).
func TestConnIdleHoldsOneGoroutine(t *testing.T) {
	codes := make(chan int, 1)
	url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
		helloIdentifyReady(t, ws, 41250)
		codes <- closeCodeOf(ws)
	})
	rec := newRecorder()
	c := NewConn(Options{URL: url, Observer: rec, Jitter: func() float64 { return 0.99 }})
	done := make(chan End, 1)
	go func() {
		done <- c.Run(context.Background(), Handshake{Identify: json.RawMessage(`{}`)}, func(context.Context, Payload, []byte) {})
	}()
	rec.waitFor(t, ObsReady)
	if n := gatewayGoroutines(); n != 1 {
		t.Errorf("%d goroutines in the gateway at rest, want 1 (Run's reader)", n)
	}
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	s.evMu.Lock()
	if s.hs.Identify != nil {
		t.Error("the IDENTIFY payload (it holds the token) is kept after it was sent")
	}
	s.evMu.Unlock()
	c.Close(ResumableCloseCode)
	if e := <-done; e.Reason != EndStopped || !e.Ready || e.SentCode() != ResumableCloseCode {
		t.Fatalf("end %+v", e)
	}
	if code := <-codes; code != ResumableCloseCode {
		t.Fatalf("server saw close %d", code)
	}
}

// TestConnEndsWhileTheHandlerBlocks: Close and the context end a Run
// whose reader is inside the handler (a Session not reading: back-
// pressure), by cancelling the handler's context, with the close code
// asked for.
func TestConnEndsWhileTheHandlerBlocks(t *testing.T) {
	for _, viaCtx := range []bool{false, true} {
		name := "Close"
		if viaCtx {
			name = "context"
		}
		t.Run(name, func(t *testing.T) {
			codes := make(chan int, 1)
			url := scriptServer(t, func(t *testing.T, ws *websocket.Conn) {
				helloIdentifyReady(t, ws, 41250)
				sendJSON(ws, `{"op":0,"t":"MESSAGE_CREATE","s":2,"d":{}}`)
				codes <- closeCodeOf(ws)
			})
			c := NewConn(Options{URL: url, Jitter: func() float64 { return 0.99 }})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			blocked := make(chan struct{})
			handlerErr := make(chan error, 1)
			done := make(chan End, 1)
			go func() {
				done <- c.Run(ctx, Handshake{Identify: json.RawMessage(`{}`)}, func(ctx context.Context, p Payload, _ []byte) {
					if p.T != "MESSAGE_CREATE" {
						return
					}
					close(blocked)
					<-ctx.Done()
					handlerErr <- ctx.Err()
				})
			}()
			<-blocked
			code := 1000
			if viaCtx {
				cancel()
				code = ResumableCloseCode
			} else {
				c.Close(1000)
			}
			e := <-done
			if e.Reason != EndStopped || !e.Ready || e.SentCode() != code {
				t.Fatalf("end %+v", e)
			}
			if viaCtx && !errors.Is(e.Err, context.Canceled) {
				t.Fatalf("end error %v, want the context's", e.Err)
			}
			if err := <-handlerErr; err == nil {
				t.Fatal("the handler's context was not cancelled")
			}
			if got := <-codes; got != code {
				t.Fatalf("server saw close %d, want %d", got, code)
			}
		})
	}
}

// countingClock is a fake clock that counts the AfterFunc callbacks that
// have returned.
type countingClock struct {
	*clock.Fake
	mu   sync.Mutex
	cond *sync.Cond
	ran  int
}

func newCountingClock() *countingClock {
	c := &countingClock{Fake: clock.NewFake(time.Time{})}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *countingClock) AfterFunc(d time.Duration, fn func()) clock.Timer {
	return c.Fake.AfterFunc(d, func() {
		fn()
		c.mu.Lock()
		c.ran++
		c.cond.Broadcast()
		c.mu.Unlock()
	})
}

// waitRan waits until n callbacks have returned (bounded).
func (c *countingClock) waitRan(t *testing.T, n int) {
	t.Helper()
	deadline := time.AfterFunc(10*time.Second, func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer deadline.Stop()
	end := time.Now().Add(10 * time.Second)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.ran < n {
		if time.Now().After(end) {
			t.Fatalf("%d timer callbacks returned, want %d", c.ran, n)
		}
		c.cond.Wait()
	}
}

// TestStaleZombieCallbackIsIgnored: a zombie check that fires while an
// ACK is being processed (it waits for the state machine, the ACK re-arms
// the check) must not end the connection. The test holds the state
// machine's lock across the firing so the callback is stale whatever the
// scheduling.
func TestStaleZombieCallbackIsIgnored(t *testing.T) {
	clk := newCountingClock()
	s := &session{c: NewConn(Options{URL: "ws://127.0.0.1:1/", Clock: clk}), ackedLast: true, interval: time.Second}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	// A socket for finish to wake, should the connection end.
	r := NewRelay(RelayOptions{})
	defer r.Close()
	ws, _, err := r.Dialer().Dial("ws://lifeline-relay/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	s.ws = ws
	now := clk.Now()
	s.evMu.Lock()
	s.helloed, s.lastAck = true, now
	s.ackedLast, s.sentAt = false, now // a heartbeat is outstanding
	s.arm(&s.zombie, s.zombieAfter(), s.onZombie)
	clk.Advance(time.Hour) // the check fires and waits for evMu
	s.control(Payload{Op: OpHeartbeatACK}, clk.Now())
	s.evMu.Unlock()
	clk.waitRan(t, 1)
	if s.isEnded() {
		t.Fatalf("a stale zombie check ended the connection: %v", s.end)
	}
	// The ACK re-armed the check: one timer waits, a whole factor away.
	if n := clk.Waiters(); n != 1 {
		t.Fatalf("%d timers armed after the ACK, want the zombie check", n)
	}
}
