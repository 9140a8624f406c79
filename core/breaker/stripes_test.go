package breaker

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"unsafe"
)

// TestStripeBits checks how many counter stripes a breaker gets for a
// number of processors: the next power of two, at least 1, at most 16.
func TestStripeBits(t *testing.T) {
	for _, c := range []struct{ procs, stripes int }{
		{0, 1}, {1, 1}, {2, 2}, {3, 4}, {4, 4}, {5, 8}, {8, 8}, {9, 16}, {16, 16}, {17, 16}, {256, 16},
	} {
		if got := 1 << stripeBits(c.procs); got != c.stripes {
			t.Errorf("GOMAXPROCS %d: %d stripes, want %d", c.procs, got, c.stripes)
		}
	}
}

// TestStripesFollowGOMAXPROCS checks that New sizes the stripes by
// GOMAXPROCS, that each stripe keeps its own 128 bytes, and that the
// counters stay exact when more goroutines than stripes count at once
// (GOMAXPROCS raised after New, or several goroutines per core).
func TestStripesFollowGOMAXPROCS(t *testing.T) {
	if got := unsafe.Sizeof(stripe{}); got != stripeSize {
		t.Fatalf("a stripe is %d bytes, want %d", got, stripeSize)
	}
	for _, procs := range []int{1, 2, 3} {
		prev := runtime.GOMAXPROCS(procs)
		b := New(Settings{Name: "stripes"})
		runtime.GOMAXPROCS(prev)
		if want := 1 << stripeBits(procs); len(b.stripes) != want {
			t.Fatalf("GOMAXPROCS %d: %d stripes, want %d", procs, len(b.stripes), want)
		}
		const workers, calls = 8, 500
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range calls {
					_ = b.Execute(context.Background(), func(context.Context) error { return nil })
				}
			})
		}
		wg.Wait()
		if m := b.Metrics(); m.Successes != workers*calls || m.Calls != workers*calls {
			t.Fatalf("GOMAXPROCS %d: %d successes, %d calls; want %d", procs, m.Successes, m.Calls, workers*calls)
		}
	}
}
