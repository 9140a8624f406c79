# Effective lifeline configuration (lifeline config export).
# Layers: preset medium, environment, options. Comments give each value's source.
# Token: read from DISCORD_TOKEN (set by env DISCORD_TOKEN; never exported).

connection {
  token                  = env("DISCORD_TOKEN")                                                   # env DISCORD_TOKEN
  intents                = ["Guilds", "GuildMessages", "GuildMessageReactions", "DirectMessages"] # preset medium (policies/medium.hcl:9:3)
  auto_reconnect         = true                                                                   # preset medium (policies/medium.hcl:11:3)
  max_reconnect_attempts = 15                                                                     # preset medium (policies/medium.hcl:13:3)
  reconnect_delay        = "3s"                                                                   # preset medium (policies/medium.hcl:14:3)
  backoff_multiplier     = 2                                                                      # preset medium (policies/medium.hcl:15:3)
  max_reconnect_delay    = "5m"                                                                   # preset medium (policies/medium.hcl:16:3)
  zombie_after           = 1.4                                                                    # preset medium (policies/medium.hcl:19:3)
  shards                 = "auto"                                                                 # preset medium (policies/medium.hcl:22:3)
}

health {
  enabled  = true  # default
  interval = "30s" # preset medium (policies/medium.hcl:29:3)
  timeout  = "10s" # preset medium (policies/medium.hcl:30:3)
  retries  = 3     # preset medium (policies/medium.hcl:31:3)

  # health.checks: preset medium (policies/medium.hcl:36:3)
  check "latency" {
    type      = "latency"
    threshold = "1s"
  }

  check "gateway" {
    type      = "gateway"
    threshold = "1m30s"
    critical  = true
  }

  check "error_rate" {
    type      = "error_rate"
    threshold = 0.1
  }
}

circuit_breaker {
  failure_threshold   = 10    # preset medium (policies/medium.hcl:53:3)
  recovery_threshold  = 3     # preset medium (policies/medium.hcl:57:3)
  open_timeout        = "1m"  # preset medium (policies/medium.hcl:55:3)
  monitoring_period   = "5m"  # preset medium (policies/medium.hcl:54:3)
  half_open_max_calls = 3     # preset medium (policies/medium.hcl:56:3)
  reset_timeout       = "2m"  # preset medium (policies/medium.hcl:58:3)
  backoff_multiplier  = 2     # preset medium (policies/medium.hcl:59:3)
  max_open_timeout    = "10m" # preset medium (policies/medium.hcl:60:3)
}

degradation {
  enabled        = true  # preset medium (policies/medium.hcl:64:3)
  recovery_delay = "45s" # preset medium (policies/medium.hcl:66:3)

  # degradation.levels: preset medium (policies/medium.hcl:69:3)
  level "minimal" {
    when    = "latency.heartbeat > 1000 || errors.rate > 0.05 || errors.consecutive >= 5"
    actions = ["reduce_logging_level", "disable_analytics"]
  }

  level "moderate" {
    when    = "latency.heartbeat > 2000 || errors.rate > 0.15 || rest.rate_limited >= 10"
    actions = ["increase_timeouts", "disable_non_critical_features"]
  }

  level "severe" {
    when    = "errors.rate > 0.3 || breaker.state == 'OPEN' || rest.server_errors >= 20"
    actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  }

  level "critical" {
    when    = "errors.rate > 0.6 || (!gateway.connected && gateway.down_for > duration('60s'))"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }

  recover {
    when = "latency.heartbeat < 600 && errors.rate < 0.03 && rest.rate_limited < 3 && breaker.state == 'CLOSED'"
  }
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
