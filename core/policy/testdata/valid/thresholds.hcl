# The seed's shorthand: thresholds generate every level and the recover
# condition; an explicit level replaces the generated one.
degradation {
  recovery_delay     = "10s"
  recovery_threshold = 0.8

  thresholds {
    latency            = "300ms"
    error_rate         = 0.15
    consecutive_errors = 3
  }

  level "severe" {
    when    = "breaker.state == 'OPEN'"
    actions = ["enable_aggressive_caching"]
  }
}
