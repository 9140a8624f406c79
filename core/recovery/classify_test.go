package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/conn"
	"github.com/lifeline-bot/lifeline/core/events"
	"github.com/lifeline-bot/lifeline/core/gateway"
	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
	"github.com/lifeline-bot/lifeline/policies"
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
		{"invalid session, resumable", gateway.End{Reason: gateway.EndInvalidSession, Resumable: true}, "invalid_session", 0, false},
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
			var end gateway.End
			if want := errors.As(tc.err, &end) && end.Resumable; got.Resumable != want {
				t.Fatalf("Classify = %+v, want resumable %v", got, want)
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
		// Op 9: d=true says the session may be resumed, d=false that it
		// is gone.
		{gateway.End{Reason: gateway.EndInvalidSession, Resumable: true}, "resume reconnect reidentify"},
		{gateway.End{Reason: gateway.EndInvalidSession}, "reconnect reidentify"},
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
	f, ok = recovery.FailureFromEvent(events.ForShard(now, 1, events.Error{Source: "conn", Kind: "invalid_session", Message: "invalid_session (resumable=true)", Resumable: true}))
	want = policy.ErrorInfo{Source: "conn", Kind: "invalid_session", Message: "invalid_session (resumable=true)", Resumable: true}
	if !ok || f.Error != want {
		t.Fatalf("FailureFromEvent(op 9 d=true) = %+v, %v", f, ok)
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

// Every shipped policy (and the built-in rules) resumes after op 9 with
// d=true and never after op 9 with d=false, whatever else it does.
func TestShippedPoliciesResumeOnlyAResumableInvalidSession(t *testing.T) {
	pols := map[string]*policy.Policy{"built-in": policy.Default()}
	names, err := fs.Glob(policies.FS, "*.hcl")
	if err != nil || len(names) == 0 {
		t.Fatalf("shipped policies: %v %v", names, err)
	}
	for _, name := range names {
		src, err := fs.ReadFile(policies.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.LoadSource(name, src, policy.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pols[name] = p
	}
	cases := []struct {
		name      string
		end       gateway.End
		canResume bool
	}{
		{"op 9 d=true", gateway.End{Reason: gateway.EndInvalidSession, Resumable: true}, true},
		{"op 9 d=false", gateway.End{Reason: gateway.EndInvalidSession}, false},
	}
	for name, p := range pols {
		for _, tc := range cases {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				rules, err := p.ChooseRecovery(recovery.Classify("conn", tc.end), &metrics.Snapshot{})
				if err != nil {
					t.Fatal(err)
				}
				var plan []string
				resumes := false
				for _, r := range rules {
					plan = append(plan, r.Name)
					resumes = resumes || r.Use == recovery.Resume
				}
				if resumes != tc.canResume {
					t.Fatalf("plan %v: resume applies %v, want %v", plan, resumes, tc.canResume)
				}
				if tc.canResume && rules[0].Use != recovery.Resume {
					t.Fatalf("plan %v: resume is not first", plan)
				}
			})
		}
	}
}
