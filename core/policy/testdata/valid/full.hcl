# Every block and attribute, with locals, env() and a heredoc condition.
locals {
  slow      = "1500ms"
  high_rate = 0.25
  moderate  = "errors.rate > ${local.high_rate} || latency.heartbeat > duration(\"${local.slow}\")"
}

connection {
  token                  = env("BOT_TOKEN")
  intents                = ["Guilds", "GuildMessages", "GuildBans", "DirectMessages"]
  auto_reconnect         = false
  max_reconnect_attempts = 0
  reconnect_delay        = "2s"
  backoff_multiplier     = 1.5
  max_reconnect_delay    = "1m"
  zombie_after           = 2
  shards                 = 4
}

health {
  enabled  = true
  interval = "15s"
  timeout  = "5s"
  retries  = 2

  check "latency" {
    type      = "latency"
    threshold = local.slow
  }
  check "database" {
    plugin   = "pgping"
    critical = true
    config = {
      dsn     = env("DB_DSN", "postgres://localhost/bot")
      timeout = "2s"
      tables  = ["users", "guilds"]
    }
  }
}

circuit_breaker {
  failure_threshold   = 10
  recovery_threshold  = 2
  open_timeout        = "30s"
  monitoring_period   = "2m"
  half_open_max_calls = 1
  reset_timeout       = "5m"
  backoff_multiplier  = 3
  max_open_timeout    = "15m"
}

degradation {
  enabled        = true
  recovery_delay = "45s"

  level "minimal" {
    when    = "latency.heartbeat > duration('750ms')"
    actions = ["reduce_logging_level"]
  }
  level "moderate" {
    when    = local.moderate
    actions = ["disable_analytics", "pgping.pause_sync"]
  }
  level "critical" {
    when = <<-EOT
      !gateway.connected && gateway.last_ack_age > duration("2m")
        || health.status == "CRITICAL"
    EOT
    actions = ["enable_read_only_mode"]
  }
  recover {
    when = "errors.rate < 0.05 && health.score >= 80 && degradation.age > duration(\"1m\")"
  }
}

recovery "restart_client" {
  priority     = 1
  when         = "error.message contains 'ECONNRESET'"
  use          = "restart_client"
  max_attempts = 2
}

recovery "failover" {
  priority = 50
  when     = "error.kind == 'dial' && errors.consecutive >= 3"
  use      = "pgping.failover"
}

recovery "resume" {}

plugin "pgping" {
  path   = "./bin/pgping"
  sha256 = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
  args   = ["-v"]
  config = { pool = 4 }
}
