package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name  string
		err   error
		kind  string
		code  int
		fatal bool
	}{
		{"nil", nil, "", 0, false},
		{"gateway close 4000", gateway.End{Reason: gateway.EndClosed, CloseCode: 4000}, "close", 4000, false},
		{"gateway close 4004", gateway.End{Reason: gateway.EndClosed, CloseCode: 4004}, "close", 4004, true},
		{"zombie", gateway.End{Reason: gateway.EndZombie}, "zombie", 0, false},
		{"invalid session", gateway.End{Reason: gateway.EndInvalidSession}, "invalid_session", 0, false},
		{"identify blocked by the budget", gateway.End{Reason: gateway.EndIdentifyBlocked, Err: &conn.SessionStartLimitError{Total: 1000}}, "identify_blocked", 0, true},
		{"wrapped CloseError 4014", fmt.Errorf("conn: %w", conn.NewCloseError(4014, "Disallowed intent(s).")), "close", 4014, true},
		{"CloseError 4000", conn.NewCloseError(4000, ""), "close", 4000, false},
		{"session start limit", &conn.SessionStartLimitError{Total: 1000}, "identify_limit", 0, true},
		{"deadline", fmt.Errorf("open: %w", context.DeadlineExceeded), "timeout", 0, false},
		{"watchdog", fmt.Errorf("session open: %w", conn.ErrWatchdogTimeout), "timeout", 0, false},
		{"net timeout", &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, "timeout", 0, false},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, "dial", 0, false},
		{"other", errors.New("something"), "error", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := recovery.Classify("conn", tc.err)
			if got.Kind != tc.kind || got.CloseCode != tc.code || got.Fatal != tc.fatal {
				t.Fatalf("Classify = %+v, want kind %q code %d fatal %v", got, tc.kind, tc.code, tc.fatal)
			}
			if tc.err != nil && (got.Message != tc.err.Error() || got.Source != "conn") {
				t.Fatalf("message/source %+v", got)
			}
		})
	}
}

// The classification feeds the default rules: a fatal close is never
// retried; a resumable one resumes.
func TestClassifyFeedsTheDefaultRules(t *testing.T) {
	cases := []struct {
		err  error
		plan string
	}{
		{conn.NewCloseError(4004, "Authentication failed."), ""},
		{conn.NewCloseError(4000, ""), "resume reconnect reidentify"},
		{conn.NewCloseError(4009, ""), "reconnect reidentify"},
		{gateway.End{Reason: gateway.EndZombie}, "resume reconnect reidentify restart_client"},
	}
	for _, tc := range cases {
		e := recovery.New(recovery.Settings{Clock: newFake(), Connection: &fakeConn{errs: map[conn.RecoverMode]error{
			conn.RecoverResume: errBoom, conn.RecoverReconnect: errBoom, conn.RecoverReidentify: errBoom}}})
		rep, _ := e.Handle(context.Background(), recovery.Failure{Error: recovery.Classify("conn", tc.err)})
		if got := fmt.Sprint(rep.Plan); got != "["+tc.plan+"]" {
			t.Fatalf("%v: plan %s, want [%s]", tc.err, got, tc.plan)
		}
	}
}

func TestFailureFromEvent(t *testing.T) {
	now := time.Unix(0, 0)
	f, ok := recovery.FailureFromEvent(events.ForShard(now, 2, events.Error{Source: "conn", Kind: "close", CloseCode: 4000, Message: "closed"}))
	want := policy.ErrorInfo{Source: "conn", Kind: "close", CloseCode: 4000, Message: "closed"}
	if !ok || f.Shard != 2 || f.Error != want {
		t.Fatalf("FailureFromEvent = %+v, %v", f, ok)
	}
	if _, ok := recovery.FailureFromEvent(events.New(now, events.Error{Source: recovery.Source, Kind: "recovery_failed"})); ok {
		t.Fatal("the Engine's own error was turned into a Failure")
	}
	if _, ok := recovery.FailureFromEvent(events.New(now, events.StateChange{From: "READY", To: "RECONNECTING"})); ok {
		t.Fatal("a state change was turned into a Failure")
	}
}

func TestFailureAndAttemptStrings(t *testing.T) {
	f := closeFailure(4000)
	if got, want := f.String(), "close 4000: gateway closed with 4000"; got != want {
		t.Fatalf("Failure.String() = %q, want %q", got, want)
	}
	if got, want := (recovery.Failure{Error: policy.ErrorInfo{Message: "x"}}).String(), "error: x"; got != want {
		t.Fatalf("Failure.String() = %q, want %q", got, want)
	}
	a := recovery.Attempt{Strategy: "resume", Number: 2, Failure: f}
	if got, want := a.Cause(), "recovery resume attempt 2: close 4000: gateway closed with 4000"; got != want {
		t.Fatalf("Attempt.Cause() = %q, want %q", got, want)
	}
}
