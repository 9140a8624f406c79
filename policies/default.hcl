# lifeline's default policy: what an empty policy file means, written out.
#
# Every value here equals the built-in default (a test keeps them equal), so
# copying this file is a safe start. Durations are strings ("30s"); in
# conditions, durations are numbers of milliseconds. docs/policy.md is the
# full reference.

connection {
  # The token is never written in a policy: name the variable it is read from.
  token = env("DISCORD_TOKEN")

  # The smallest useful set for a command bot. Privileged intents
  # (GuildMembers, GuildPresences, MessageContent) need the Developer Portal.
  intents = ["Guilds", "GuildMessages"]

  auto_reconnect = true

  # Ten attempts with doubling delays (5s, 10s, ... capped at 5m) ride out
  # about half an hour of outage before lifeline gives up and says so.
  max_reconnect_attempts = 10
  reconnect_delay        = "5s"
  backoff_multiplier     = 2
  max_reconnect_delay    = "5m"

  # discordgo waits 5 heartbeat intervals (~3.5 minutes) before it notices a
  # zombie connection; 1.4 intervals (~58s on Discord) catches a dead
  # connection after one missed ACK, which gets 0.4 of an interval (~16s).
  zombie_after = 1.4

  # "auto" asks Discord (GET /gateway/bot) how many shards to run.
  shards = "auto"
}

health {
  enabled = true
  # Checks read the metrics snapshot, so they are cheap; every 30s is often
  # enough to see trends without filling the history with noise.
  interval = "30s"
  # A check that takes a third of the interval is broken, not slow.
  timeout = "10s"
  retries = 3

  # Discord's heartbeat ACKs usually come back within 100-300ms; a full
  # second means the bot's commands feel slow.
  check "latency" {
    type      = "latency"
    threshold = "1s"
  }

  # Two heartbeat intervals (~41s each) without an ACK: the connection is
  # gone. Critical, because nothing works without the gateway.
  check "gateway" {
    type      = "gateway"
    threshold = "90s"
    critical  = true
  }

  # One request in ten failing is well past normal (under 1%).
  check "error_rate" {
    type      = "error_rate"
    threshold = 0.1
  }
}

circuit_breaker {
  # Five failures in five minutes are an outage, not bad luck.
  failure_threshold = 5
  monitoring_period = "5m"
  # Discord outages last minutes; probing every minute is polite.
  open_timeout = "60s"
  # Three probes at once, three successes to close: one lucky request does
  # not close the circuit.
  half_open_max_calls = 3
  recovery_threshold  = 3
  # Two quiet minutes forget old failures.
  reset_timeout = "2m"
  # Each re-open doubles the open time, up to ten minutes.
  backoff_multiplier = 2
  max_open_timeout   = "10m"
}

degradation {
  enabled = true
  # Conditions must stay good for 30s before a level steps down, so a
  # flapping metric does not toggle features on and off.
  recovery_delay = "30s"

  # Each level doubles the thresholds of the one before it: heartbeat
  # latency 1s/2s/4s/8s, error rate 10%/20%/40%/80%, failures in a row
  # 5/10/20/40. Entering a level applies its actions on top of the lower
  # levels' actions.
  level "minimal" {
    when    = "latency.heartbeat > 1000 || errors.rate > 0.1 || errors.consecutive >= 5"
    actions = ["reduce_logging_level", "disable_analytics"]
  }
  level "moderate" {
    when    = "latency.heartbeat > 2000 || errors.rate > 0.2 || errors.consecutive >= 10"
    actions = ["increase_timeouts", "disable_non_critical_features"]
  }
  level "severe" {
    when    = "latency.heartbeat > 4000 || errors.rate > 0.4 || errors.consecutive >= 20"
    actions = ["reduce_concurrent_requests", "enable_aggressive_caching"]
  }
  level "critical" {
    when    = "latency.heartbeat > 8000 || errors.rate > 0.8 || errors.consecutive >= 40"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }

  # Step down only when every metric is under half its MINIMAL threshold:
  # the gap between 0.5x and 1x is the hysteresis band.
  recover {
    when = "latency.heartbeat < 500 && errors.rate < 0.05 && errors.consecutive < 2.5"
  }
}

# Recovery rules run in priority order (lower first) until one succeeds.
# Close codes 4004 and 4010-4014 are fatal: no strategy can fix a bad token,
# bad shard or disallowed intents, so every rule excludes them.

# RESUME keeps the session and replays missed events: the cheapest fix.
# Not after 1000/1001 (session closed), 4007 (bad sequence), 4009 (session
# timed out) or an invalid session Discord says cannot resume (op 9 with
# d=false): Discord would refuse it. Op 9 with d=true may resume
# (error.resumable is its d).
recovery "resume" {
  priority     = 10
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && error.close_code not in [1000, 1001, 4007, 4009] && (error.kind != \"invalid_session\" || error.resumable)"
  use          = "resume"
  max_attempts = 3
}

# A fresh connection, letting the connection loop choose resume or identify.
recovery "reconnect" {
  priority     = 20
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  use          = "reconnect"
  max_attempts = 3
}

# A new session (IDENTIFY): costs one of the daily identifies, so fewer tries.
recovery "reidentify" {
  priority     = 30
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014]"
  use          = "reidentify"
  max_attempts = 2
}

# Throw the discordgo client away and start a new one: the remedy for hung
# opens and zombies, or when the cheaper strategies keep failing.
recovery "restart_client" {
  priority     = 40
  when         = "!error.fatal && error.close_code not in [4004, 4010, 4011, 4012, 4013, 4014] && (error.kind in [\"handshake_timeout\", \"zombie\"] || errors.consecutive >= 3)"
  use          = "restart_client"
  max_attempts = 1
}
