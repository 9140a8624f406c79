# Round-trip fixture: plugins, plugin checks, actions and strategies,
# locals, a heredoc condition and explicit levels.
locals {
  slow = "latency.heartbeat > 1500"
}

connection {
  token                  = env("BOT_TOKEN")
  intents                = ["Guilds", "GuildMessages", "MessageContent"]
  max_reconnect_attempts = 0
  shards                 = 4
}

health {
  enabled = true
  check "redis" {
    plugin    = "cache"
    threshold = 250
    config = {
      addr    = "127.0.0.1:6379"
      db      = 2
      tls     = false
      weights = [1, 2.5, 3]
      nested  = { a = "b" }
    }
  }
}

circuit_breaker {
  failure_threshold = 8
  open_timeout      = "45s"
  max_open_timeout  = "20m"
}

degradation {
  recovery_delay = "1m30s"
  level "minimal" {
    when    = local.slow
    actions = ["disable_analytics", "cache.warm"]
  }
  level "severe" {
    when    = <<-EOT
      errors.rate > 0.5 ||
      breaker.state == "OPEN"
    EOT
    actions = ["enable_read_only_mode"]
  }
  recover {
    when = "errors.rate < 0.01 && health.score >= 90"
  }
}

recovery "flush" {
  priority = 5
  when     = "error.kind == 'rest' && errors.consecutive >= 2"
  use      = "cache.flush"
}

recovery "reconnect" {
  priority     = 20
  max_attempts = 5
}

plugin "cache" {
  path   = "./bin/cache"
  args   = []
  config = { region = "eu" }
}
