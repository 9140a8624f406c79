package coord_test

import (
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/coord"
	"github.com/lifeline-bot/lifeline/core/coord/coordtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	fake := clock.NewFake(time.Time{})
	coordtest.RunKV(t, coordtest.Harness{
		Open:   func(*testing.T) coord.Store { return coord.NewMemoryStore(fake) },
		TTL:    time.Second,
		Pass:   fake.Advance,
		Settle: time.Second,
	})
}
