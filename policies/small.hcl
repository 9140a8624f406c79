# Preset for small bots: fewer than 100 servers, one process, one shard.
#
# A small bot sends little traffic, usually runs on a cheap VPS or a home
# machine, and has one person watching it. So: notice outages from few
# failures, keep noise down, and rely on the thresholds shorthand (see
# docs/policy.md) rather than hand-written conditions.

connection {
  token   = env("DISCORD_TOKEN")
  intents = ["Guilds", "GuildMessages", "DirectMessages"]

  auto_reconnect = true
  # Home connections drop for minutes (router restarts, ISP hiccups): keep
  # trying for about an hour (2s, 4s, ... capped at 10m).
  max_reconnect_attempts = 12
  reconnect_delay        = "2s"
  backoff_multiplier     = 2
  max_reconnect_delay    = "10m"

  # 1.4 heartbeat intervals: a dead connection is noticed after ~58s.
  zombie_after = 1.4

  # Discord requires sharding only from 2,500 servers.
  shards = 1
}

health {
  # Little traffic means few samples: check once a minute so the score is
  # not dominated by one slow request.
  interval = "60s"
  timeout  = "10s"
  retries  = 2

  # Home and VPS networks add latency; 1.5s is slow but normal-ish there.
  check "latency" {
    type      = "latency"
    threshold = "1500ms"
  }
  check "gateway" {
    type      = "gateway"
    threshold = "90s"
    critical  = true
  }
  # With few requests one failure is a large fraction: allow 20%.
  check "error_rate" {
    type      = "error_rate"
    threshold = 0.2
  }
}

circuit_breaker {
  # A small bot makes few REST calls: three failures within two minutes
  # already mean Discord (or the network) is down.
  failure_threshold   = 3
  monitoring_period   = "2m"
  open_timeout        = "30s"
  half_open_max_calls = 1
  recovery_threshold  = 2
  reset_timeout       = "2m"
  backoff_multiplier  = 2
  max_open_timeout    = "5m"
}

degradation {
  enabled = true
  # Nobody is paged for a small bot: come back quickly once things are fine.
  recovery_delay = "20s"
  # Recover below 60% of every MINIMAL threshold.
  recovery_threshold = 0.6

  # The shorthand generates minimal/moderate/severe/critical at 1x, 2x, 4x
  # and 8x these values, each with the default actions.
  thresholds {
    latency            = "1500ms"
    error_rate         = 0.2
    consecutive_errors = 3
  }
}

# No recovery blocks: the built-in rules (resume, reconnect, reidentify,
# restart_client) are right for one shard.
