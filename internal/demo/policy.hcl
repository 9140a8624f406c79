# The demo's policy: the default policy with its timings shortened so a
# one-minute story shows a whole outage. The fake Discord's clock is sped up
# by the same factor (its heartbeat is ~2s instead of 41.25s).

connection {
  intents                = ["Guilds", "GuildMessages"]
  max_reconnect_attempts = 0 # never give up during the story
  reconnect_delay        = "250ms"
  backoff_multiplier     = 2
  max_reconnect_delay    = "2s"
  zombie_after           = 1.5
}

health {
  interval = "1s"
  timeout  = "500ms"
  retries  = 0

  check "latency" {
    type      = "latency"
    threshold = "500ms"
  }
  check "gateway" {
    type      = "gateway"
    threshold = "4s"
    critical  = true
  }
  check "error_rate" {
    type      = "error_rate"
    threshold = 0.2
  }
}

circuit_breaker {
  failure_threshold   = 3
  monitoring_period   = "30s"
  open_timeout        = "1s"
  half_open_max_calls = 1
  recovery_threshold  = 2
  reset_timeout       = "10s"
  backoff_multiplier  = 2
  max_open_timeout    = "4s"
}
