package recovery_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/core/recovery"
)

const failoverPolicy = `recovery "resume" {
  priority = 10
}

recovery "failover" {
  priority = 5
  when     = "error.kind == 'dial' && errors.consecutive >= 3"
  use      = "pgping.failover"
}

plugin "pgping" {
  path = "./bin/pgping"
}
`

func TestSetPolicyUnknownStrategyNamesTheLocation(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	err := e.SetPolicy(mustPolicy(t, failoverPolicy))
	if !errors.Is(err, recovery.ErrUnknownStrategy) {
		t.Fatalf("err %v, want ErrUnknownStrategy", err)
	}
	var be *recovery.BindError
	if !errors.As(err, &be) || len(be.Errs) != 1 {
		t.Fatalf("err %#v, want one *BindError entry", err)
	}
	msg := err.Error()
	// The `use` value is on line 8 of the file.
	for _, want := range []string{"policy.hcl:8,", `recovery "failover"`, `"pgping.failover"`, `plugin "pgping"`, "registered: reconnect, reidentify, restart_client, resume"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not contain %q", msg, want)
		}
	}
	// The old (default) policy stays bound.
	if got := e.Policy(); len(got.Recovery) != 4 || !got.Recovery[0].Generated {
		t.Fatalf("policy after a failed bind: %+v", got.Recovery)
	}
	// Once the plugin provides it, the same policy binds and runs it.
	tr := &tracker{}
	if err := e.Register("pgping.failover", tr.strategy("failover", nil)); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPolicy(mustPolicy(t, failoverPolicy)); err != nil {
		t.Fatal(err)
	}
	f := recovery.Failure{Error: policy.ErrorInfo{Kind: "dial", Message: "connection refused"}}
	rep, err := e.Handle(context.Background(), withStreak(f, 3))
	if err != nil || rep.Strategy != "failover" {
		t.Fatalf("rep %+v err %v", rep, err)
	}
}

func TestSetPolicyReportsEveryProblem(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	if err := e.AddRecoveryStrategy(recovery.Strategy{Name: "mine", Recoverer: (&tracker{}).strategy("mine", nil)}); err != nil {
		t.Fatal(err)
	}
	err := e.SetPolicy(mustPolicy(t, `
recovery "mine" {
  use = "resume"
}
recovery "a" {
  use = "p.a"
}
recovery "b" {
  use = "p.b"
}
plugin "p" { path = "./p" }
`))
	var be *recovery.BindError
	if !errors.As(err, &be) || len(be.Errs) != 3 {
		t.Fatalf("err %v, want three problems", err)
	}
	if !errors.Is(err, recovery.ErrDuplicate) || !errors.Is(err, recovery.ErrUnknownStrategy) {
		t.Fatalf("err %v, want both ErrDuplicate and ErrUnknownStrategy", err)
	}
	if !strings.Contains(be.Errs[0].Error(), "policy.hcl:2,") {
		t.Fatalf("duplicate not located at the block: %v", be.Errs[0])
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is not one line: %q", err)
	}
}

func TestAddRecoveryStrategyValidation(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	ok := (&tracker{}).strategy("x", nil)
	cases := []struct {
		name string
		s    recovery.Strategy
		want error
	}{
		{"no name", recovery.Strategy{Recoverer: ok}, recovery.ErrInvalidStrategy},
		{"no recoverer", recovery.Strategy{Name: "x"}, recovery.ErrInvalidStrategy},
		{"clashes with a default rule", recovery.Strategy{Name: "resume", Recoverer: ok}, recovery.ErrDuplicate},
		{"fine", recovery.Strategy{Name: "x", Recoverer: ok}, nil},
		{"clashes with a Go strategy", recovery.Strategy{Name: "x", Recoverer: ok}, recovery.ErrDuplicate},
	}
	for _, tc := range cases {
		err := e.AddRecoveryStrategy(tc.s)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := e.Register("", ok); !errors.Is(err, recovery.ErrInvalidStrategy) {
		t.Fatalf("Register without a name: %v", err)
	}
	if err := e.Register("p.x", nil); !errors.Is(err, recovery.ErrInvalidStrategy) {
		t.Fatalf("Register without a Recoverer: %v", err)
	}
	if !e.RemoveRecoveryStrategy("x") || e.RemoveRecoveryStrategy("x") {
		t.Fatal("RemoveRecoveryStrategy did not remove exactly once")
	}
	if err := e.AddRecoveryStrategy(recovery.Strategy{Name: "x", Recoverer: ok}); err != nil {
		t.Fatalf("re-adding after removal: %v", err)
	}
}

func TestRegisterReplacesABuiltin(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	tr := &tracker{}
	if err := e.Register(recovery.Resume, tr.strategy("resume", nil)); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Handle(context.Background(), closeFailure(4000))
	if err != nil || rep.Strategy != "resume" {
		t.Fatalf("rep %+v err %v", rep, err)
	}
	equal(t, "attempts", tr.got(), []string{"resume#1"})
	equal(t, "registered", e.Registered(), []string{"reconnect", "reidentify", "restart_client", "resume"})
}

func TestStrategiesListing(t *testing.T) {
	e := recovery.New(recovery.Settings{Clock: newFake()})
	_ = e.Register("pgping.failover", (&tracker{}).strategy("f", nil))
	if err := e.SetPolicy(mustPolicy(t, failoverPolicy)); err != nil {
		t.Fatal(err)
	}
	_ = e.AddRecoveryStrategy(recovery.Strategy{Name: "flush", Priority: 7, When: func(recovery.Failure) bool { return true },
		Recoverer: (&tracker{}).strategy("flush", nil)})
	got := e.Strategies()
	var lines []string
	for _, s := range got {
		lines = append(lines, strings.Join([]string{s.Name, s.Use, itoa2(s.Priority), itoa2(s.MaxAttempts), s.Origin, s.Location, s.Condition}, " "))
	}
	equal(t, "strategies", lines, []string{
		"failover pgping.failover 05 03 policy policy.hcl:5,1-20 error.kind == 'dial' && errors.consecutive >= 3",
		"flush flush 07 03 go  (Go)",
		"resume resume 10 03 policy policy.hcl:1,1-18 ",
	})
	// Nil binds the default rules again.
	if err := e.SetPolicy(nil); err != nil {
		t.Fatal(err)
	}
	if got := e.Strategies(); len(got) != 5 || got[0].Name != "flush" || got[1].Origin != "default" || got[1].Condition == "" || got[1].Location != "" {
		t.Fatalf("after SetPolicy(nil): %+v", got)
	}
}

func itoa2(n int) string { return string([]byte{byte('0' + n/10%10), byte('0' + n%10)}) }
