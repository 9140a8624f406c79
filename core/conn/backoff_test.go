package conn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// seqRand returns the values in order, then repeats the last one.
func seqRand(vals ...float64) func() float64 {
	i := 0
	return func() float64 {
		v := vals[min(i, len(vals)-1)]
		i++
		return v
	}
}

func TestBackoffDefaults(t *testing.T) {
	b := NewBackoff(BackoffSettings{Rand: seqRand(0.5)})
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
		8 * time.Second, 16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second}
	for i, w := range want {
		if got := b.Next(); got != w {
			t.Errorf("attempt %d: Next() = %v, want %v", i, got, w)
		}
	}
	if b.Attempt() != len(want) {
		t.Errorf("Attempt() = %d", b.Attempt())
	}
}

func TestBackoffCeiling(t *testing.T) {
	tests := []struct {
		name string
		s    BackoffSettings
		n    int
		want time.Duration
	}{
		{"first", BackoffSettings{}, 0, time.Second},
		{"negative n", BackoffSettings{}, -3, time.Second},
		{"grows", BackoffSettings{}, 3, 8 * time.Second},
		{"capped", BackoffSettings{}, 10, 2 * time.Minute},
		{"huge n does not overflow", BackoffSettings{}, 1 << 30, 2 * time.Minute},
		{"custom", BackoffSettings{Base: 100 * time.Millisecond, Max: time.Second, Multiplier: 3}, 2, 900 * time.Millisecond},
		{"custom capped", BackoffSettings{Base: 100 * time.Millisecond, Max: time.Second, Multiplier: 3}, 3, time.Second},
		{"multiplier below one is constant", BackoffSettings{Base: time.Second, Multiplier: 0.5}, 5, time.Second},
		{"NaN multiplier is constant", BackoffSettings{Base: time.Second, Multiplier: math.NaN()}, 5, time.Second},
		{"max below base", BackoffSettings{Base: 5 * time.Second, Max: time.Second}, 0, 5 * time.Second},
		{"max duration cap", BackoffSettings{Base: time.Hour, Max: math.MaxInt64, Multiplier: 1e9}, 40, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewBackoff(tt.s).Ceiling(tt.n); got != tt.want {
				t.Errorf("Ceiling(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestBackoffJitterBounds(t *testing.T) {
	tests := []struct {
		name string
		s    BackoffSettings
		r    float64
		n    int
		want time.Duration
	}{
		{"r=0 gives floor 0", BackoffSettings{}, 0, 2, 0},
		{"r=0 gives the floor", BackoffSettings{Floor: 300 * time.Millisecond}, 0, 2, 300 * time.Millisecond},
		{"r near 1 stays below the ceiling", BackoffSettings{}, math.Nextafter(1, 0), 2, 4*time.Second - 1},
		{"r out of range counts as 0", BackoffSettings{}, 1.5, 1, 0},
		{"negative r counts as 0", BackoffSettings{}, -0.1, 1, 0},
		{"NaN r counts as 0", BackoffSettings{}, math.NaN(), 1, 0},
		{"floor interpolates", BackoffSettings{Floor: time.Second}, 0.5, 2, 2500 * time.Millisecond},
		{"floor above ceiling waits the ceiling", BackoffSettings{Floor: 10 * time.Second}, 0.9, 0, time.Second},
		{"equal jitter: r=0 waits half the ceiling", BackoffSettings{MinShare: 0.5}, 0, 2, 2 * time.Second},
		{"equal jitter interpolates", BackoffSettings{MinShare: 0.5}, 0.5, 2, 3 * time.Second},
		{"min share above the floor wins", BackoffSettings{MinShare: 0.5, Floor: time.Second}, 0, 2, 2 * time.Second},
		{"floor above the min share wins", BackoffSettings{MinShare: 0.1, Floor: time.Second}, 0, 2, time.Second},
		{"min share 1 waits the ceiling", BackoffSettings{MinShare: 1}, 0.7, 2, 4 * time.Second},
		{"min share above 1 counts as 1", BackoffSettings{MinShare: 7}, 0.7, 2, 4 * time.Second},
		{"negative min share counts as 0", BackoffSettings{MinShare: -1}, 0, 2, 0},
		{"NaN min share counts as 0", BackoffSettings{MinShare: math.NaN()}, 0, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Rand = seqRand(tt.r)
			b := NewBackoff(tt.s)
			var got time.Duration
			for i := 0; i <= tt.n; i++ {
				got = b.Next()
			}
			if got != tt.want {
				t.Errorf("wait %d = %v, want %v", tt.n, got, tt.want)
			}
			lo, hi := b.Envelope(tt.n)
			if got < lo || got > hi {
				t.Errorf("wait %v outside envelope [%v, %v]", got, lo, hi)
			}
		})
	}
}

// TestBackoffNeverLeavesEnvelope draws many waits from a seeded source and
// checks each against the envelope, across resets.
func TestBackoffNeverLeavesEnvelope(t *testing.T) {
	for _, s := range []BackoffSettings{
		{},
		{Base: 50 * time.Millisecond, Max: 3 * time.Second, Multiplier: 1.7, Floor: 20 * time.Millisecond},
		{Base: time.Second, Max: time.Second},
	} {
		src := rand.New(rand.NewPCG(1, 2))
		s.Rand = src.Float64
		b := NewBackoff(s)
		for i := 0; i < 2000; i++ {
			if i%97 == 0 {
				b.Reset()
			}
			n := b.Attempt()
			d := b.Next()
			lo, hi := b.Envelope(n)
			if d < lo || d > hi || (d == hi && lo != hi) {
				t.Fatalf("%+v attempt %d: wait %v outside [%v, %v)", s, n, d, lo, hi)
			}
		}
	}
}

func TestBackoffReset(t *testing.T) {
	b := NewBackoff(BackoffSettings{Rand: seqRand(0.999)})
	for range 5 {
		b.Next()
	}
	b.Reset()
	if b.Attempt() != 0 {
		t.Fatalf("Attempt() after Reset = %d", b.Attempt())
	}
	if d := b.Next(); d >= time.Second {
		t.Errorf("first wait after Reset = %v, want < 1s", d)
	}
}

func TestBackoffConcurrent(t *testing.T) {
	b := NewBackoff(BackoffSettings{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Next()
			}
		}()
	}
	wg.Wait()
	if b.Attempt() != 800 {
		t.Errorf("Attempt() = %d, want 800", b.Attempt())
	}
}

func ExampleBackoff() {
	b := NewBackoff(BackoffSettings{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.5 }})
	for n := 0; n < 5; n++ {
		lo, hi := b.Envelope(n)
		fmt.Printf("attempt %d: wait %v in [%v, %v]\n", n, b.Next(), lo, hi)
	}
	b.Reset()
	fmt.Println("after reset:", b.Next())
	// Output:
	// attempt 0: wait 500ms in [0s, 1s]
	// attempt 1: wait 1s in [0s, 2s]
	// attempt 2: wait 2s in [0s, 4s]
	// attempt 3: wait 4s in [0s, 8s]
	// attempt 4: wait 5s in [0s, 10s]
	// after reset: 500ms
}

// TestEqualJitterBoundsFailuresInAnOutage is why the connection loop uses
// MinShare 0.5: however the random draws fall, an outage of two first
// steps (10s with the default policy's 5s) sees at most three attempts
// (the immediate one and two after backoff waits), so a breaker that
// opens at five failures stays closed. Full jitter can fit any number.
func TestEqualJitterBoundsFailuresInAnOutage(t *testing.T) {
	const base = 5 * time.Second
	outage := 2 * base
	attempts := func(s BackoffSettings) int {
		b := NewBackoff(s)
		n, at := 1, time.Duration(0) // the first attempt goes at once
		for n < 100 {                // zero waits would never leave the outage
			at += b.Next()
			if at >= outage {
				break
			}
			n++
		}
		return n
	}
	draws := []func() float64{
		func() float64 { return 0 },
		func() float64 { return math.Nextafter(1, 0) },
		rand.New(rand.NewPCG(1, 2)).Float64,
		rand.New(rand.NewPCG(3, 4)).Float64,
	}
	for i, r := range draws {
		if n := attempts(BackoffSettings{Base: base, Max: 5 * time.Minute, MinShare: 0.5, Rand: r}); n > 3 {
			t.Errorf("draws %d: %d attempts within a %s outage with equal jitter, want at most 3", i, n, outage)
		}
	}
	if n := attempts(BackoffSettings{Base: base, Max: 5 * time.Minute, Rand: draws[0]}); n < 5 {
		t.Errorf("full jitter with zero draws: %d attempts, want many (the case equal jitter rules out)", n)
	}
}

func TestConfigDefaultsToEqualJitter(t *testing.T) {
	for _, tt := range []struct {
		set, want float64
	}{{0, 0.5}, {-1, -1}, {0.25, 0.25}} {
		c := Config{Token: "t", BackoffMinShare: tt.set}
		if err := c.defaults(); err != nil {
			t.Fatal(err)
		}
		if c.BackoffMinShare != tt.want {
			t.Errorf("BackoffMinShare %v: default %v, want %v", tt.set, c.BackoffMinShare, tt.want)
		}
	}
}
