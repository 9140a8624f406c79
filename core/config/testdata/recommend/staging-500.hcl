# lifeline policy recommended for staging, 500 guilds (lifeline config recommend).
# Base: preset medium (Medium bots: 100 to 1,000 servers, one process)
#
# Why:
#  1. Preset medium: 500 guilds is between 100 and 1,000.
#  2. Staging mirrors production so that what is tested is what runs; only the reconnect limit
#     differs.
#  3. connection.max_reconnect_attempts = 20: A broken staging deploy should stop and say so rather
#     than retry forever; 20 attempts with capped backoff still ride out a Discord incident of an hour
#     or so.
#  4. Intents: the preset asks for no privileged intent. GuildMembers, GuildPresences and
#     MessageContent must be enabled in the Developer Portal (else close code 4014), and need
#     Discord's approval once the bot is verified, which Discord requires from 100 servers.

connection {
  token                  = env("DISCORD_TOKEN")
  intents                = ["Guilds", "GuildMessages", "GuildMessageReactions", "DirectMessages"] # preset medium
  auto_reconnect         = true                                                                   # preset medium
  max_reconnect_attempts = 20                                                                     # recommended (3)
  reconnect_delay        = "3s"                                                                   # preset medium
  backoff_multiplier     = 2                                                                      # preset medium
  max_reconnect_delay    = "5m"                                                                   # preset medium
  zombie_after           = 1.4                                                                    # preset medium
  shards                 = "auto"                                                                 # preset medium
}

health {
  enabled  = true  # default
  interval = "30s" # preset medium
  timeout  = "10s" # preset medium
  retries  = 3     # preset medium

  # health.checks: preset medium
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
  failure_threshold   = 10    # preset medium
  recovery_threshold  = 3     # preset medium
  open_timeout        = "1m"  # preset medium
  monitoring_period   = "5m"  # preset medium
  half_open_max_calls = 3     # preset medium
  reset_timeout       = "2m"  # preset medium
  backoff_multiplier  = 2     # preset medium
  max_open_timeout    = "10m" # preset medium
}

degradation {
  enabled        = true  # preset medium
  recovery_delay = "45s" # preset medium

  # degradation.levels: preset medium
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
