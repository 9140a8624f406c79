package recovery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

// *conn.Connection is what ConnAdapter adapts.
var _ recovery.Requester = (*conn.Connection)(nil)

// scriptedConn is a Requester that answers each Recover by publishing the
// events core/conn would, through publish (set by the test).
type scriptedConn struct {
	mu      sync.Mutex
	publish func(cause string)
	err     error // returned by Recover
	done    chan struct{}
	fatal   error
	causes  []string
}

func (s *scriptedConn) Recover(mode conn.RecoverMode, cause string) error {
	s.mu.Lock()
	s.causes = append(s.causes, cause)
	p := s.publish
	s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if p != nil {
		go p(cause)
	}
	return nil
}

func (s *scriptedConn) Done() <-chan struct{} { return s.done }
func (s *scriptedConn) Err() error            { return s.fatal }

func TestConnAdapter(t *testing.T) {
	at := time.Unix(0, 0)
	cases := []struct {
		name string
		// answer publishes to the adapter for one cause.
		answer  func(a *recovery.ConnAdapter, cause string)
		reqErr  error
		stop    error // close Done with this Err
		timeout bool
		want    string // "" for success, else a substring of the error
		wantIs  error
	}{
		{
			name: "success",
			answer: func(a *recovery.ConnAdapter, cause string) {
				// Unrelated events first: another attempt's completion,
				// a state change.
				a.Observe(events.ForShard(at, 0, events.Recovery{Completed: true, Strategy: "resume", Trigger: "zombie", Success: false, Error: "x"}))
				a.Observe(events.ForShard(at, 0, events.StateChange{From: "READY", To: "RECONNECTING", Cause: cause}))
				a.Observe(events.ForShard(at, 0, events.Recovery{Strategy: "resume", Trigger: cause}))
				a.Observe(events.ForShard(at, 0, events.Recovery{Completed: true, Strategy: "resume", Trigger: cause, Success: true}))
			},
		},
		{
			name: "the connection's attempt failed",
			answer: func(a *recovery.ConnAdapter, cause string) {
				a.Observe(events.ForShard(at, 0, events.Recovery{Completed: true, Strategy: "resume", Trigger: cause, Error: "dial_failed: connection refused"}))
			},
			want: "resume attempt failed: dial_failed: connection refused",
		},
		{
			name:   "Recover refused",
			reqErr: errors.New("conn: connection is not running"),
			want:   "not running",
		},
		{
			name:   "the connection stopped",
			stop:   conn.NewCloseError(4004, ""),
			want:   "connection stopped",
			wantIs: conn.ErrAuthenticationFailed,
		},
		{
			name:    "no outcome before the context ends",
			timeout: true,
			wantIs:  context.DeadlineExceeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := &scriptedConn{done: make(chan struct{}), err: tc.reqErr, fatal: tc.stop}
			a := recovery.NewConnAdapter(sc)
			if tc.answer != nil {
				sc.publish = func(cause string) { tc.answer(a, cause) }
			}
			if tc.stop != nil {
				close(sc.done)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.timeout {
				// The deadline passes once the request is made and no
				// event ever comes.
				sc.publish = func(string) { cancel(context.DeadlineExceeded) }
			}
			err := a.Recover(ctx, conn.RecoverResume, "recovery resume attempt 1: close 4000: x")
			switch {
			case tc.want == "" && tc.wantIs == nil:
				if err != nil {
					t.Fatalf("err %v", err)
				}
			default:
				if err == nil || (tc.want != "" && !strings.Contains(err.Error(), tc.want)) || (tc.wantIs != nil && !errors.Is(err, tc.wantIs)) {
					t.Fatalf("err %v, want %q / %v", err, tc.want, tc.wantIs)
				}
			}
			if len(sc.causes) != 1 || !strings.HasPrefix(sc.causes[0], "recovery resume attempt 1: close 4000: x [#") {
				t.Fatalf("causes %q", sc.causes)
			}
		})
	}
}

func TestConnAdapterConcurrentCallsGetTheirOwnOutcome(t *testing.T) {
	sc := &scriptedConn{done: make(chan struct{})}
	a := recovery.NewConnAdapter(sc)
	// Fail every cause that mentions "bad", succeed the others.
	sc.publish = func(cause string) {
		a.Observe(events.New(time.Unix(0, 0), events.Recovery{Completed: true, Strategy: "resume", Trigger: cause,
			Success: !strings.Contains(cause, "bad"), Error: "nope"}))
	}
	var wg sync.WaitGroup
	results := make([]error, 20)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cause := "good"
			if i%2 == 1 {
				cause = "bad"
			}
			results[i] = a.Recover(context.Background(), conn.RecoverReconnect, cause)
		}()
	}
	wg.Wait()
	for i, err := range results {
		if (i%2 == 1) != (err != nil) {
			t.Fatalf("call %d: err %v", i, err)
		}
	}
}
