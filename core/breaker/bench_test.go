package breaker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// The benchmarks run lifeline's breaker and sony/gobreaker v2 side by side
// on the same work, as sub-benchmarks "lifeline" and "gobreaker", so one run
// gives both figures on the same machine. Both use the wall clock.

var errBench = errors.New("bench: dependency down")

func okCall(context.Context) error   { return nil }
func failCall(context.Context) error { return errBench }

func gbOK() (struct{}, error)   { return struct{}{}, nil }
func gbFail() (struct{}, error) { return struct{}{}, errBench }

func BenchmarkExecuteClosedSuccess(b *testing.B) {
	b.Run("lifeline", func(b *testing.B) {
		br := New(Settings{Name: "bench"})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Execute(ctx, okCall); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(gbOK); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAllowClosedSuccess(b *testing.B) {
	b.Run("lifeline", func(b *testing.B) {
		br := New(Settings{Name: "bench"})
		b.ReportAllocs()
		for b.Loop() {
			done, err := br.Allow()
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		b.ReportAllocs()
		for b.Loop() {
			done, err := cb.Allow()
			if err != nil {
				b.Fatal(err)
			}
			done(nil)
		}
	})
}

func BenchmarkExecuteOpenRejection(b *testing.B) {
	b.Run("lifeline", func(b *testing.B) {
		br := New(Settings{Name: "bench", OpenTimeout: time.Hour})
		ctx := context.Background()
		for range DefaultFailureThreshold {
			_ = br.Execute(ctx, failCall)
		}
		if br.State() != StateOpen {
			b.Fatal("breaker did not open")
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := br.Execute(ctx, okCall); err != br.errOpen {
				b.Fatal(err)
			}
		}
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench", Timeout: time.Hour})
		for range 6 { // its default trips after more than 5 consecutive failures
			_, _ = cb.Execute(gbFail)
		}
		if cb.State() != gobreaker.StateOpen {
			b.Fatal("gobreaker did not open")
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(gbOK); err != gobreaker.ErrOpenState {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkExecuteParallel is closed-state success from GOMAXPROCS
// goroutines at once; compare its ns/op with BenchmarkExecuteClosedSuccess.
func BenchmarkExecuteParallel(b *testing.B) {
	b.Run("lifeline", func(b *testing.B) {
		br := New(Settings{Name: "bench"})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := br.Execute(ctx, okCall); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("gobreaker", func(b *testing.B) {
		cb := gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{Name: "bench"})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(gbOK); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
