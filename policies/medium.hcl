# Preset for medium bots: 100 to 1,000 servers, one process.
#
# Traffic is steady enough for rates to mean something, rate limits start
# to matter, and users notice slowness. Sharding is not yet required but
# "auto" lets Discord decide as the bot grows.

connection {
  token   = env("DISCORD_TOKEN")
  intents = ["Guilds", "GuildMessages", "GuildMessageReactions", "DirectMessages"]

  auto_reconnect = true
  # 15 attempts from 3s doubling to a 5m cap: about an hour of outage.
  max_reconnect_attempts = 15
  reconnect_delay        = "3s"
  backoff_multiplier     = 2
  max_reconnect_delay    = "5m"
  # 1.4 heartbeat intervals (~58s on Discord): a dead connection is noticed
  # after one missed ACK, which gets 0.4 of an interval (~16s) to arrive.
  zombie_after = 1.4
  # Sharding is optional below 2,500 servers; "auto" takes Discord's
  # recommendation from GET /gateway/bot, so a growing bot shards in time.
  shards = "auto"
}

health {
  # Enough traffic for a 30s round to see a trend; a check that needs a
  # third of the round (10s) is broken, not slow; three retries ride out a
  # single dropped request.
  interval = "30s"
  timeout  = "10s"
  retries  = 3

  # Users notice commands slower than a second; two heartbeat intervals
  # (~41s each) plus a margin without an ACK means the gateway is gone;
  # one failing request in ten is far above normal (under 1%).
  check "latency" {
    type      = "latency"
    threshold = "1s"
  }
  check "gateway" {
    type      = "gateway"
    threshold = "90s"
    critical  = true
  }
  check "error_rate" {
    type      = "error_rate"
    threshold = 0.1
  }
}

circuit_breaker {
  # Enough traffic that a handful of failures is noise: open at 10 in 5m.
  failure_threshold   = 10
  monitoring_period   = "5m"
  open_timeout        = "60s"
  half_open_max_calls = 3
  recovery_threshold  = 3
  reset_timeout       = "2m"
  backoff_multiplier  = 2
  max_open_timeout    = "10m"
}

degradation {
  enabled = true
  # Users notice features flapping: hold a level for 45s of good metrics.
  recovery_delay = "45s"

  # Slow heartbeats or a few failures: shed the optional work first.
  level "minimal" {
    when    = "latency.heartbeat > 1000 || errors.rate > 0.05 || errors.consecutive >= 5"
    actions = ["reduce_logging_level", "disable_analytics"]
  }
  # Rate limiting (429s) at this size usually means a hot loop or a raid:
  # back off before Discord escalates to a global limit.
  level "moderate" {
    when    = "latency.heartbeat > 2000 || errors.rate > 0.15 || rest.rate_limited >= 10"
    actions = ["increase_timeouts", "disable_non_critical_features"]
  }
  # An open breaker or a burst of 5xx means Discord itself is struggling:
  # cut concurrency and serve from cache instead of adding load.
  level "severe" {
    when    = "errors.rate > 0.3 || breaker.state == 'OPEN' || rest.server_errors >= 20"
    actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  }
  # Most calls fail, or the gateway has been gone for a minute: keep the
  # essential commands, refuse writes that would fail anyway. A resume or
  # a fresh IDENTIFY takes seconds, and four reconnect attempts from 3s
  # doubling take about 45s (3+6+12+24): a minute down is an outage, not a
  # blip. gateway.down_for keeps growing while the gateway stays down, so
  # the level holds until it is back; a first connection still in its
  # handshake is not "down" (down_for is 0 before the first READY).
  level "critical" {
    when    = "errors.rate > 0.6 || (!gateway.connected && gateway.down_for > duration('60s'))"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }

  # Step down only well inside the MINIMAL thresholds (600ms against 1s,
  # 3% against 5%), with 429s gone and the breaker closed: the gap is the
  # hysteresis band that keeps levels from flapping.
  recover {
    when = "latency.heartbeat < 600 && errors.rate < 0.03 && rest.rate_limited < 3 && breaker.state == 'CLOSED'"
  }
}
