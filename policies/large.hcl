# Preset for large bots: more than 1,000 servers, sharded.
#
# Many shards share one identify budget (1,000 IDENTIFYs a day, a few per
# 5 seconds), so resuming matters most; one shard's trouble must not
# degrade the others; the bot must never give up reconnecting on its own.
#
# Running the shards: one lifeline process runs every shard Discord
# recommends (shards = "auto" below) or a fixed count, each with its own
# connection, breaker, metrics and health checks, all sharing one REST
# client, one identify queue and the daily session-start budget:
#
#   lifeline run --preset large --shard-count 16            # all 16 here
#   lifeline run --preset large --shard-count 64 --shard 3  # one of 64
#   lifeline.New(cfg, lifeline.WithPreset("large"), lifeline.WithShardRange(0, 15, 64))
#
# Shards start in identify order (one IDENTIFY per bucket per 5s); a start
# the day's budget cannot cover is refused before any IDENTIFY, with the
# reset time. The conditions below see the whole process: errors pool
# every shard with REST, heartbeat latency is the shards' mean,
# gateway.connected holds only when every shard is connected,
# gateway.down_for is the longest any shard has been down, breaker.state
# is the worst shard's, and the shards.* variables count the shards by
# condition (docs/policy.md). So the levels read shares of shards, never
# one shard's state: one shard down of many must not degrade the others.

connection {
  token   = env("DISCORD_TOKEN")
  intents = ["Guilds", "GuildMessages", "GuildMessageReactions", "GuildVoiceStates", "DirectMessages"]

  auto_reconnect = true
  # 0 = never stop: an operator, not a counter, decides a large bot is down.
  max_reconnect_attempts = 0
  # Start fast (most drops are single-shard blips that resume at once), but
  # back off hard so a mass disconnect does not stampede the gateway.
  reconnect_delay     = "1s"
  backoff_multiplier  = 2.5
  max_reconnect_delay = "2m"
  zombie_after        = 1.4
  # Discord's recommendation from /gateway/bot.
  shards = "auto"
}

health {
  # More shards, more to watch: a shorter interval finds the one bad shard
  # sooner; the timeout stays a third of it; two retries, because with
  # many shards a failing check is more often real than a fluke.
  interval = "15s"
  timeout  = "5s"
  retries  = 2

  # Large audiences notice slowness sooner: 800ms for latency, 5% errors.

  check "latency" {
    type      = "latency"
    threshold = "800ms"
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
  # Thousands of calls a minute: 25 failures in a minute is a trend, fewer
  # is noise.
  failure_threshold   = 25
  monitoring_period   = "1m"
  open_timeout        = "30s"
  half_open_max_calls = 5
  recovery_threshold  = 5
  reset_timeout       = "1m"
  backoff_multiplier  = 2
  max_open_timeout    = "5m"
}

degradation {
  enabled = true
  # Big audiences punish flapping: a full minute of good metrics.
  recovery_delay = "60s"

  # Tighter than the default (800ms, 3%): at this size a small rise in the
  # error rate is thousands of failed requests. Shed optional work first.
  level "minimal" {
    when    = "latency.heartbeat > 800 || errors.rate > 0.03 || errors.consecutive >= 5"
    actions = ["reduce_logging_level", "disable_analytics"]
  }
  # 50 rate-limited requests in the window means the bot is near Discord's
  # global limit (50 requests/s): back off before Discord escalates. A
  # fifth of the shards in trouble (reconnecting, breaker open or failing
  # their checks) means a fifth of the guilds are not served: the whole bot
  # sheds its optional work, not only those shards. The shards that ended
  # for good (FAILED: a fatal close code, 4004 or 4010-4014; this preset
  # never stops reconnecting on its own) are not trouble the levels can
  # ease: none of them counts here or below, so two misconfigured shards of
  # ten do not hold the rest degraded for good. They stay in shards.total
  # and in shards.failed: alert on it (docs/operations.md). max(..., 1): a
  # process with no shard yet is not degraded.
  level "moderate" {
    when    = "latency.heartbeat > 1500 || errors.rate > 0.1 || rest.rate_limited >= 50 || shards.unhealthy - shards.failed >= 0.2 * max(shards.total, 1)"
    actions = ["increase_timeouts", "disable_non_critical_features"]
  }
  # 100 server errors or more than half the shards in trouble
  # (reconnecting, breaker OPEN or failing their checks): Discord is
  # struggling (a Discord-wide incident takes many shards at once); reduce
  # concurrency and lean on the cache rather than add load. One shard's
  # open breaker is that shard's business (breaker.state is the worst
  # shard's, so it is not read here); it counts in the share.
  level "severe" {
    when    = "errors.rate > 0.25 || rest.server_errors >= 100 || shards.unhealthy - shards.failed > 0.5 * max(shards.total, 1)"
    actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  }
  # Half the requests failing, or most of the bot gone for a minute: keep
  # only what still works, read-only. "Gone" is more than half the shards
  # in trouble while the longest outage among them has lasted a minute
  # (gateway.down_for leaves out the FAILED shards while any other runs):
  # five reconnect attempts from 1s growing 2.5x take about 64s
  # (1+2.5+6.3+15.6+39), far past any resume, and a Discord-wide incident
  # shows in many shards at once. One shard down, however long, never
  # gets here; a shard still in its first handshake (at start, or after a
  # re-shard) is starting, not unhealthy, and not down. The level holds
  # while the shards stay down (down_for keeps growing).
  level "critical" {
    when    = "errors.rate > 0.5 || (shards.unhealthy - shards.failed > 0.5 * max(shards.total, 1) && gateway.down_for > duration('60s'))"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }

  # Half the MINIMAL latency, a third of its error rate and fewer than a
  # tenth of the shards unhealthy (half the MODERATE share; an open breaker
  # makes its shard unhealthy): big audiences punish flapping more than a
  # slightly late recovery. The shards that ended for good (FAILED) are not
  # counted, as in the levels: no degradation brings them back.
  # max(..., 1) lets a process with no shard yet recover. Not
  # breaker.state: it is the worst shard's, one shard's trouble (health.*
  # with several shards is the plugins' checks).
  recover {
    when = "latency.heartbeat < 400 && errors.rate < 0.02 && (shards.unhealthy - shards.failed) * 10 < max(shards.total, 1)"
  }
}

# RESUME costs no identify: try it first and more often. Not after an
# invalid session Discord says cannot resume (op 9 with d=false); op 9 with
# d=true may resume (error.resumable is its d).
recovery "resume" {
  priority     = 10
  when         = "!error.fatal && error.close_code not in [1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014] && (error.kind != 'invalid_session' || error.resumable)"
  max_attempts = 5
}

# A new connection, letting the connection loop choose RESUME or IDENTIFY;
# three tries before the costlier strategies.
recovery "reconnect" {
  priority     = 20
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  max_attempts = 3
}

# Each IDENTIFY spends the shared daily budget: one try per failure, and
# only once the shard has failed repeatedly.
recovery "reidentify" {
  priority     = 30
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.close_code in [4007, 4009] || error.kind == 'invalid_session' || errors.consecutive >= 3)"
  max_attempts = 1
}

# A hung open or a zombie needs a fresh discordgo client: once per failure,
# and otherwise only after five failures in a row.
recovery "restart_client" {
  priority     = 40
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.kind in ['timeout', 'zombie'] || errors.consecutive >= 5)"
  max_attempts = 1
}
