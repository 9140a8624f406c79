# Effective lifeline configuration (lifeline config export).
# Layers: preset small, environment, options. Comments give each value's source.
# Token: read from DISCORD_TOKEN (set by env DISCORD_TOKEN; never exported).

connection {
  token                  = env("DISCORD_TOKEN")                          # env DISCORD_TOKEN
  intents                = ["Guilds", "GuildMessages", "DirectMessages"] # preset small (policies/small.hcl:10:3)
  auto_reconnect         = true                                          # preset small (policies/small.hcl:12:3)
  max_reconnect_attempts = 12                                            # preset small (policies/small.hcl:15:3)
  reconnect_delay        = "2s"                                          # preset small (policies/small.hcl:16:3)
  backoff_multiplier     = 2                                             # preset small (policies/small.hcl:17:3)
  max_reconnect_delay    = "10m"                                         # preset small (policies/small.hcl:18:3)
  zombie_after           = 1.4                                           # preset small (policies/small.hcl:21:3)
  shards                 = 1                                             # preset small (policies/small.hcl:24:3)
}

health {
  enabled  = true  # default
  interval = "1m"  # preset small (policies/small.hcl:30:3)
  timeout  = "10s" # preset small (policies/small.hcl:31:3)
  retries  = 2     # preset small (policies/small.hcl:32:3)

  # health.checks: preset small (policies/small.hcl:35:3)
  check "latency" {
    type      = "latency"
    threshold = "1.5s"
  }

  check "gateway" {
    type      = "gateway"
    threshold = "1m30s"
    critical  = true
  }

  check "error_rate" {
    type      = "error_rate"
    threshold = 0.2
  }
}

circuit_breaker {
  failure_threshold   = 3     # preset small (policies/small.hcl:54:3)
  recovery_threshold  = 2     # preset small (policies/small.hcl:58:3)
  open_timeout        = "30s" # preset small (policies/small.hcl:56:3)
  monitoring_period   = "2m"  # preset small (policies/small.hcl:55:3)
  half_open_max_calls = 1     # preset small (policies/small.hcl:57:3)
  reset_timeout       = "2m"  # preset small (policies/small.hcl:59:3)
  backoff_multiplier  = 2     # preset small (policies/small.hcl:60:3)
  max_open_timeout    = "5m"  # preset small (policies/small.hcl:61:3)
}

degradation {
  enabled            = true  # preset small (policies/small.hcl:65:3)
  recovery_delay     = "20s" # preset small (policies/small.hcl:67:3)
  recovery_threshold = 0.6   # preset small (policies/small.hcl:69:3)

  # degradation.levels: preset small (policies/small.hcl:73:3)
  thresholds {
    latency            = "1.5s" # preset small (policies/small.hcl:74:5)
    error_rate         = 0.2    # preset small (policies/small.hcl:75:5)
    consecutive_errors = 3      # preset small (policies/small.hcl:76:5)
  }

  # level "minimal" (from the thresholds): when = "latency.heartbeat > 1500 || errors.rate > 0.2 || errors.consecutive >= 3", actions = ["reduce_logging_level", "disable_analytics"]
  # level "moderate" (from the thresholds): when = "latency.heartbeat > 3000 || errors.rate > 0.4 || errors.consecutive >= 6", actions = ["increase_timeouts", "disable_non_critical_features"]
  # level "severe" (from the thresholds): when = "latency.heartbeat > 6000 || errors.rate > 0.8 || errors.consecutive >= 12", actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  # level "critical" (from the thresholds): when = "latency.heartbeat > 12000 || errors.rate >= 1 || errors.consecutive >= 24", actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  # recover (from the thresholds): when = "latency.heartbeat < 900 && errors.rate < 0.12 && errors.consecutive < 1.8"
}

# recovery: default
recovery "resume" {
  priority     = 10
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && error.close_code not in [1000, 1001, 4007, 4009] && (error.kind != \"invalid_session\" || error.resumable)"
  use          = "resume"
  max_attempts = 3
}

recovery "reconnect" {
  priority     = 20
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  use          = "reconnect"
  max_attempts = 3
}

recovery "reidentify" {
  priority     = 30
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  use          = "reidentify"
  max_attempts = 2
}

recovery "restart_client" {
  priority     = 40
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.kind in [\"handshake_timeout\", \"zombie\"] || errors.consecutive >= 3)"
  use          = "restart_client"
  max_attempts = 1
}
