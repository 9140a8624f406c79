# A policy that sets every block. It is laid over the "medium" preset by
# main.go; environment variables (DISCORD_INTENTS, DISCORD_MAX_RECONNECT_ATTEMPTS,
# ... see docs/configuration.md) override it, and `lifeline config export`
# shows the result with where each value came from.

connection {
  token                  = env("DISCORD_TOKEN")
  intents                = ["Guilds", "GuildMessages", "GuildMessageReactions"]
  auto_reconnect         = true
  max_reconnect_attempts = 20
  reconnect_delay        = "2s"
  backoff_multiplier     = 2
  max_reconnect_delay    = "2m"
  zombie_after           = 1.4
}

health {
  interval = "15s"
  timeout  = "5s"
  retries  = 2

  check "latency" {
    type      = "latency"
    threshold = "750ms"
  }
  check "gateway" {
    type      = "gateway"
    threshold = "90s"
    critical  = true
  }
  check "error_rate" {
    type      = "error_rate"
    threshold = 0.05
  }
}

circuit_breaker {
  failure_threshold   = 4
  monitoring_period   = "2m"
  open_timeout        = "30s"
  half_open_max_calls = 2
  recovery_threshold  = 2
  reset_timeout       = "1m"
  backoff_multiplier  = 2
  max_open_timeout    = "5m"
}

locals {
  slow_ms = 1500
}

degradation {
  recovery_delay = "45s"

  level "minimal" {
    when    = "latency.heartbeat > ${local.slow_ms} || errors.rate > 0.05"
    actions = ["disable_analytics"]
  }
  level "moderate" {
    when    = "errors.rate > 0.15"
    actions = ["disable_non_critical_features", "enable_aggressive_caching"]
  }
  level "severe" {
    when    = "errors.rate > 0.3 || breaker.state == \"HALF_OPEN\""
    actions = ["reduce_concurrent_requests", "shutdown_non_essential_services"]
  }
  level "critical" {
    when    = "breaker.state == \"OPEN\""
    actions = ["enable_read_only_mode"]
  }
  recover {
    when = "latency.heartbeat < 500 && errors.rate < 0.02 && breaker.state == \"CLOSED\""
  }
}

recovery "resume" {
  priority = 10
  when     = "!error.fatal && error.close_code not in [1000, 1001, 4007, 4009]"
}

recovery "reconnect" {
  priority     = 20
  max_attempts = 5
}
