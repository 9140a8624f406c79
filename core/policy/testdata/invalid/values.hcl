connection {
  token                  = "MTIzNDU2Nzg5.secret-token-value"
  intents                = ["Guilds", "GuildMesages", "Everything"]
  max_reconnect_attempts = -1
  reconnect_delay        = "10m"
  max_reconnect_delay    = "1m"
  backoff_multiplier     = 0.5
  zombie_after           = 1.5
  shards                 = "many"
  colour                 = "blue"
}

connection {}

health {
  interval = "10s"
  timeout  = "30s"
  retries  = 2.5
  check "ping" {
    type = "ping"
  }
  check "db" {
    plugin = "pgpong"
  }
  check "both" {
    type   = "latency"
    plugin = "pgping"
  }
  check "rate" {
    type      = "error_rate"
    threshold = 5
  }
}

circuit_breaker {
  failure_threshold = 0
  open_timeout      = 60
  max_open_timeout  = "1s"
}

degradation {
  level "severe" {
    when    = "errors.rate > 0.5"
    actions = ["shutdown_everything", "pgping.flush", "metrics.off", "disable_analytics", "disable_analytics"]
  }
  level "moderate" {
    when = "errors.rate > 0.2"
  }
  level "severe" {
    when = "errors.rate > 0.6"
  }
  level "apocalyptic" {
    when = "true"
  }
}

recovery "teleport" {
  priority = 1
}

recovery "fallback" {
  use          = "other.strategy"
  max_attempts = 0
}

plugin "pgping" {
  sha256 = "abc"
}

plugin "unused" {
  path = "./bin/unused"
}
