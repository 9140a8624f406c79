package breaker

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHotPathsDoNotAllocate asserts the zero-allocation claims of the
// package documentation. It runs under the race detector too, which would
// add allocations to code that takes locks it should not.
func TestHotPathsDoNotAllocate(t *testing.T) {
	ctx := context.Background()
	ok := func(context.Context) error { return nil }
	closed := New(Settings{Name: "allocs"})
	open := New(Settings{Name: "allocs", FailureThreshold: 1, OpenTimeout: time.Hour})
	_ = open.Execute(ctx, func(context.Context) error { return errDown })
	if open.State() != StateOpen {
		t.Fatal("setup: breaker did not open")
	}
	tests := []struct {
		name string
		fn   func()
	}{
		{"Execute success in CLOSED", func() {
			if err := closed.Execute(ctx, ok); err != nil {
				t.Fatal(err)
			}
		}},
		{"Allow and done(nil) in CLOSED", func() {
			done, err := closed.Allow()
			if err != nil {
				t.Fatal(err)
			}
			done(nil)
		}},
		{"Execute rejected in OPEN", func() {
			if err := open.Execute(ctx, ok); !errors.Is(err, ErrOpen) {
				t.Fatal(err)
			}
		}},
		{"Allow rejected in OPEN", func() {
			if _, err := open.Allow(); !errors.Is(err, ErrOpen) {
				t.Fatal(err)
			}
		}},
		{"State", func() {
			if closed.State() != StateClosed {
				t.Fatal("state changed")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
	if m := closed.Metrics(); m.Successes < 2000 || m.Calls != m.Successes {
		t.Fatalf("the calls above were not all counted: %+v", m)
	}
}
