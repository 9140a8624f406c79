package failsafe

import (
	"errors"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
)

var errBench = errors.New("bench: dependency down")

func ok() error   { return nil }
func fail() error { return errBench }

// newBreaker is failsafe-go's count-based breaker with lifeline's default
// thresholds (open after 5 consecutive failures) and a long delay, so an
// open breaker stays open for the whole benchmark.
func newBreaker() circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		WithFailureThreshold(5).
		WithDelay(time.Hour).
		Build()
}

func BenchmarkExecuteClosedSuccess(b *testing.B) {
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](newBreaker())
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(ok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExecuteOpenRejection(b *testing.B) {
	b.Run("failsafe", func(b *testing.B) {
		cb := newBreaker()
		ex := failsafe.With[any](cb)
		for range 5 {
			_ = ex.Run(fail)
		}
		if !cb.IsOpen() {
			b.Fatal("failsafe-go's breaker did not open")
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := ex.Run(ok); !errors.Is(err, circuitbreaker.ErrOpen) {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExecuteParallel(b *testing.B) {
	b.Run("failsafe", func(b *testing.B) {
		ex := failsafe.With[any](newBreaker())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := ex.Run(ok); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
