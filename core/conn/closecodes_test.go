package conn

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestClassifyClose(t *testing.T) {
	tests := []struct {
		code     int
		action   CloseAction
		sentinel error
		hint     string // a fragment the operator must see
	}{
		{1000, ActionResume, nil, ""},
		{1001, ActionResume, nil, ""},
		{1006, ActionResume, nil, "dropped"},
		{1011, ActionResume, nil, ""},
		{1012, ActionResume, nil, ""},
		{4000, ActionResume, nil, ""},
		{4001, ActionResume, nil, ""},
		{4002, ActionResume, nil, ""},
		{4003, ActionResume, nil, ""},
		{4004, ActionFatal, ErrAuthenticationFailed, "token"},
		{4005, ActionResume, nil, ""},
		{4007, ActionNewSession, nil, "IDENTIFY"},
		{4008, ActionResume, nil, "back off"},
		{4009, ActionNewSession, nil, "IDENTIFY"},
		{4010, ActionFatal, ErrInvalidShard, "shard"},
		{4011, ActionFatal, ErrShardingRequired, "shard count"},
		{4012, ActionFatal, ErrInvalidAPIVersion, "API version"},
		{4013, ActionFatal, ErrInvalidIntents, "intents"},
		{4014, ActionFatal, ErrDisallowedIntents, "Developer Portal"},
		{4006, ActionResume, nil, "does not know"}, // Discord has no 4006
		{4099, ActionResume, nil, "does not know"},
		{3000, ActionResume, nil, "does not know"},
		{0, ActionResume, nil, "does not know"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.code), func(t *testing.T) {
			c := ClassifyClose(tt.code)
			if c.Code != tt.code {
				t.Errorf("Code = %d, want %d", c.Code, tt.code)
			}
			if c.Action != tt.action {
				t.Errorf("Action = %s, want %s", c.Action, tt.action)
			}
			if c.Err != tt.sentinel {
				t.Errorf("Err = %v, want %v", c.Err, tt.sentinel)
			}
			if c.Fatal() != (tt.action == ActionFatal) {
				t.Errorf("Fatal() = %v", c.Fatal())
			}
			if c.Name == "" || c.Hint == "" {
				t.Errorf("empty Name %q or Hint %q", c.Name, c.Hint)
			}
			if !strings.Contains(c.Hint, tt.hint) {
				t.Errorf("Hint %q does not mention %q", c.Hint, tt.hint)
			}
		})
	}
}

func TestCloseErrorIs(t *testing.T) {
	fatal := map[int]error{
		4004: ErrAuthenticationFailed,
		4010: ErrInvalidShard,
		4011: ErrShardingRequired,
		4012: ErrInvalidAPIVersion,
		4013: ErrInvalidIntents,
		4014: ErrDisallowedIntents,
	}
	all := []error{ErrAuthenticationFailed, ErrInvalidShard, ErrShardingRequired,
		ErrInvalidAPIVersion, ErrInvalidIntents, ErrDisallowedIntents}
	for _, c := range CloseCodes() {
		t.Run(c.String(), func(t *testing.T) {
			err := fmt.Errorf("shard 0: %w", NewCloseError(c.Code, "reason text"))
			want := fatal[c.Code]
			for _, s := range all {
				if got := errors.Is(err, s); got != (s == want) {
					t.Errorf("errors.Is(err, %v) = %v", s, got)
				}
			}
			if got := errors.Is(err, ErrFatalClose); got != (want != nil) {
				t.Errorf("errors.Is(err, ErrFatalClose) = %v", got)
			}
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != c.Code {
				t.Fatalf("errors.As did not find the *CloseError with code %d", c.Code)
			}
			if ce.Fatal() != (want != nil) {
				t.Errorf("Fatal() = %v", ce.Fatal())
			}
			msg := err.Error()
			if !strings.Contains(msg, fmt.Sprint(c.Code)) || !strings.Contains(msg, `"reason text"`) {
				t.Errorf("message %q lacks the code or the reason", msg)
			}
			if want != nil && !strings.Contains(msg, c.Hint) {
				t.Errorf("fatal message %q lacks the hint", msg)
			}
		})
	}
}

func TestCloseCodesComplete(t *testing.T) {
	codes := CloseCodes()
	// Every Discord gateway code from the protocol reference (no 4006).
	for _, want := range []int{4000, 4001, 4002, 4003, 4004, 4005, 4007, 4008, 4009,
		4010, 4011, 4012, 4013, 4014} {
		found := false
		for _, c := range codes {
			found = found || c.Code == want
		}
		if !found {
			t.Errorf("CloseCodes lacks %d", want)
		}
	}
	for i := 1; i < len(codes); i++ {
		if codes[i-1].Code >= codes[i].Code {
			t.Errorf("CloseCodes not ascending at %d: %d then %d", i, codes[i-1].Code, codes[i].Code)
		}
	}
	for _, c := range codes {
		if (c.Action == ActionFatal) != (c.Err != nil) {
			t.Errorf("%s: a code is fatal exactly when it has a sentinel", c)
		}
	}
}

func TestSessionKeptAfterClientClose(t *testing.T) {
	for code, want := range map[int]bool{1000: false, 1001: false, 1012: true, 4000: true, 1006: true} {
		if got := SessionKeptAfterClientClose(code); got != want {
			t.Errorf("SessionKeptAfterClientClose(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestCloseActionString(t *testing.T) {
	for a, want := range map[CloseAction]string{ActionResume: "resume", ActionNewSession: "new-session",
		ActionFatal: "fatal", 0: "CloseAction(0)"} {
		if got := a.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", a, got, want)
		}
	}
}

func ExampleClassifyClose() {
	c := ClassifyClose(4014)
	fmt.Println(c)
	err := NewCloseError(4004, "Authentication failed.")
	fmt.Println(errors.Is(err, ErrAuthenticationFailed), errors.Is(err, ErrFatalClose))
	fmt.Println(ClassifyClose(4009).Action)
	// Output:
	// 4014 disallowed intents (fatal)
	// true true
	// new-session
}
