# lifeline policy recommended for production, 12,000 guilds (lifeline config recommend).
# Base: preset large (Large bots: more than 1,000 servers, sharded)
#
# Why:
#  1. Preset large: 12,000 guilds is more than 1,000.
#  2. connection.shards = 12: Discord requires sharding from 2,500 guilds (close code 4011) and
#     recommends about 1,000 guilds per shard: ceil(12,000 / 1,000) = 12, room to grow to 30,000
#     guilds before a shard reaches the limit.
#  3. A cold start of 12 shards spends 12 of the 1,000 daily IDENTIFYs (83 full restarts a day exhaust
#     them) and, at max_concurrency 1, takes about 1m (one IDENTIFY per 5s): recover by RESUME
#     wherever possible.
#  4. connection.max_reconnect_attempts = 0: In production a person, not a counter, decides the bot is
#     down: reconnect without limit (the delay stays capped at max_reconnect_delay) and alert on
#     lifeline's reconnect metrics instead.
#  5. Intents: the preset asks for no privileged intent. GuildMembers, GuildPresences and
#     MessageContent must be enabled in the Developer Portal (else close code 4014), and need
#     Discord's approval once the bot is verified, which Discord requires from 100 servers.

connection {
  token                  = env("DISCORD_TOKEN")
  intents                = ["Guilds", "GuildMessages", "GuildMessageReactions", "GuildVoiceStates", "DirectMessages"] # preset large
  auto_reconnect         = true                                                                                       # preset large
  max_reconnect_attempts = 0                                                                                          # recommended (4)
  reconnect_delay        = "1s"                                                                                       # preset large
  backoff_multiplier     = 2.5                                                                                        # preset large
  max_reconnect_delay    = "2m"                                                                                       # preset large
  zombie_after           = 1.4                                                                                        # preset large
  shards                 = 12                                                                                         # recommended (2)
}

health {
  enabled  = true  # default
  interval = "15s" # preset large
  timeout  = "5s"  # preset large
  retries  = 2     # preset large

  # health.checks: preset large
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
  failure_threshold   = 25    # preset large
  recovery_threshold  = 5     # preset large
  open_timeout        = "30s" # preset large
  monitoring_period   = "1m"  # preset large
  half_open_max_calls = 5     # preset large
  reset_timeout       = "1m"  # preset large
  backoff_multiplier  = 2     # preset large
  max_open_timeout    = "5m"  # preset large
}

degradation {
  enabled        = true # preset large
  recovery_delay = "1m" # preset large

  # degradation.levels: preset large
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

# recovery: preset large
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
