# Effective lifeline configuration (lifeline config export).
# Layers: preset large, environment, options. Comments give each value's source.
# Token: read from DISCORD_TOKEN (set by env DISCORD_TOKEN; never exported).

connection {
  token                  = env("DISCORD_TOKEN")                                                                       # env DISCORD_TOKEN
  intents                = ["Guilds", "GuildMessages", "GuildMessageReactions", "GuildVoiceStates", "DirectMessages"] # preset large (policies/large.hcl:28:3)
  auto_reconnect         = true                                                                                       # preset large (policies/large.hcl:30:3)
  max_reconnect_attempts = 0                                                                                          # preset large (policies/large.hcl:32:3)
  reconnect_delay        = "1s"                                                                                       # preset large (policies/large.hcl:35:3)
  backoff_multiplier     = 2.5                                                                                        # preset large (policies/large.hcl:36:3)
  max_reconnect_delay    = "2m"                                                                                       # preset large (policies/large.hcl:37:3)
  zombie_after           = 1.4                                                                                        # preset large (policies/large.hcl:38:3)
  shards                 = "auto"                                                                                     # preset large (policies/large.hcl:40:3)
}

health {
  enabled  = true  # default
  interval = "15s" # preset large (policies/large.hcl:47:3)
  timeout  = "5s"  # preset large (policies/large.hcl:48:3)
  retries  = 2     # preset large (policies/large.hcl:49:3)

  # health.checks: preset large (policies/large.hcl:53:3)
  check "latency" {
    type      = "latency"
    threshold = "800ms"
  }

  check "gateway" {
    type      = "gateway"
    threshold = "1m30s"
    critical  = true
  }

  check "error_rate" {
    type      = "error_rate"
    threshold = 0.05
  }
}

circuit_breaker {
  failure_threshold   = 25    # preset large (policies/large.hcl:71:3)
  recovery_threshold  = 5     # preset large (policies/large.hcl:75:3)
  open_timeout        = "30s" # preset large (policies/large.hcl:73:3)
  monitoring_period   = "1m"  # preset large (policies/large.hcl:72:3)
  half_open_max_calls = 5     # preset large (policies/large.hcl:74:3)
  reset_timeout       = "1m"  # preset large (policies/large.hcl:76:3)
  backoff_multiplier  = 2     # preset large (policies/large.hcl:77:3)
  max_open_timeout    = "5m"  # preset large (policies/large.hcl:78:3)
}

degradation {
  enabled        = true # preset large (policies/large.hcl:82:3)
  recovery_delay = "1m" # preset large (policies/large.hcl:84:3)

  # degradation.levels: preset large (policies/large.hcl:88:3)
  level "minimal" {
    when    = "latency.heartbeat > 800 || errors.rate > 0.03 || errors.consecutive >= 5"
    actions = ["reduce_logging_level", "disable_analytics"]
  }

  level "moderate" {
    when    = "latency.heartbeat > 1500 || errors.rate > 0.1 || rest.rate_limited >= 50 || shards.unhealthy - shards.failed >= 0.2 * max(shards.total, 1)"
    actions = ["increase_timeouts", "disable_non_critical_features"]
  }

  level "severe" {
    when    = "errors.rate > 0.25 || rest.server_errors >= 100 || shards.unhealthy - shards.failed > 0.5 * max(shards.total, 1)"
    actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  }

  level "critical" {
    when    = "errors.rate > 0.5 || (shards.unhealthy - shards.failed > 0.5 * max(shards.total, 1) && gateway.down_for > duration('60s'))"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }

  recover {
    when = "latency.heartbeat < 400 && errors.rate < 0.02 && (shards.unhealthy - shards.failed) * 10 < max(shards.total, 1)"
  }
}

# recovery: preset large (policies/large.hcl:148:1)
recovery "resume" {
  priority     = 10
  when         = "!error.fatal && error.close_code not in [1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014] && (error.kind != 'invalid_session' || error.resumable)"
  use          = "resume"
  max_attempts = 5
}

recovery "reconnect" {
  priority     = 20
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  use          = "reconnect"
  max_attempts = 3
}

recovery "reidentify" {
  priority     = 30
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.close_code in [4007, 4009] || error.kind == 'invalid_session' || errors.consecutive >= 3)"
  use          = "reidentify"
  max_attempts = 1
}

recovery "restart_client" {
  priority     = 40
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.kind in ['timeout', 'zombie'] || errors.consecutive >= 5)"
  use          = "restart_client"
  max_attempts = 1
}
