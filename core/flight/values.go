package flight

import (
	"fmt"
	"time"

	"github.com/lifeline-bot/lifeline/core/metrics"
)

// Values formats the Snapshot values policies read most, in the policy's
// variable names and units: "errors.rate=0.25 errors.consecutive=3 ...".
func Values(s *metrics.Snapshot) string {
	return fmt.Sprintf("errors.rate=%.3g errors.consecutive=%d latency.heartbeat=%s gateway.connected=%t gateway.state=%s health.score=%.0f breaker.state=%s rest.rate_limited=%d",
		s.Errors.Rate, s.Errors.Consecutive, s.Latency.Heartbeat.Round(time.Millisecond),
		s.Gateway.Connected, orDash(s.Gateway.State), s.Health.Score, orDash(s.Breaker.State), s.REST.RateLimited)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
