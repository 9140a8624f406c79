# lifeline policy recommended for development, 50 guilds (lifeline config recommend).
# Base: preset small (Small bots: fewer than 100 servers, one process, one shard)
#
# Why:
#  1. Preset small: 50 guilds is fewer than 100.
#  2. connection.shards = 1: A development bot runs one shard: Discord requires sharding only from
#     2,500 guilds.
#  3. connection.max_reconnect_attempts = 3: Fail fast while developing: a bad token, intent or
#     network shows within seconds instead of after an hour of retries.
#  4. connection.reconnect_delay = "1s": Retry at once while developing; three quick attempts cost
#     three IDENTIFYs at most.
#  5. health.interval = "10s": See health changes while you test.
#  6. health.timeout = "5s": Shorter than the 10s interval, as it must be.
#  7. circuit_breaker.open_timeout = "10s": Probe again soon after a local dependency restarts.
#  8. degradation.recovery_delay = "5s": Step down quickly so an outage can be rehearsed again at once
#     (lifeline demo, the fake Discord).

connection {
  token                  = env("DISCORD_TOKEN")
  intents                = ["Guilds", "GuildMessages", "DirectMessages"] # preset small
  auto_reconnect         = true                                          # preset small
  max_reconnect_attempts = 3                                             # recommended (3)
  reconnect_delay        = "1s"                                          # recommended (4)
  backoff_multiplier     = 2                                             # preset small
  max_reconnect_delay    = "10m"                                         # preset small
  zombie_after           = 1.4                                           # preset small
  shards                 = 1                                             # recommended (2)
}

health {
  enabled  = true  # default
  interval = "10s" # recommended (5)
  timeout  = "5s"  # recommended (6)
  retries  = 2     # preset small

  # health.checks: preset small
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
  failure_threshold   = 3     # preset small
  recovery_threshold  = 2     # preset small
  open_timeout        = "10s" # recommended (7)
  monitoring_period   = "2m"  # preset small
  half_open_max_calls = 1     # preset small
  reset_timeout       = "2m"  # preset small
  backoff_multiplier  = 2     # preset small
  max_open_timeout    = "5m"  # preset small
}

degradation {
  enabled            = true # preset small
  recovery_delay     = "5s" # recommended (8)
  recovery_threshold = 0.6  # preset small

  # degradation.levels: preset small
  thresholds {
    latency            = "1.5s" # preset small
    error_rate         = 0.2    # preset small
    consecutive_errors = 3      # preset small
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
