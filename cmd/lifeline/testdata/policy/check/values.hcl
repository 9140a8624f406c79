# Values of the wrong type or out of range, unknown names, undeclared
# plugins and levels out of order: every problem is reported in one pass.
connection {
  token                  = env("DISCORD_TOKEN")
  max_reconnect_attempts = -3
  reconnect_delay        = "5 seconds"
  backoff_multiplier     = 20
  shards                 = "lots"
}

health {
  interval = "10s"
  timeout  = "30s"
  check "db" {
    plugin = "pgping"
  }
}

circuit_breaker {
  failure_threshold = 0
  open_timeout      = 60
  colour            = "red"
}

degradation {
  level "severe" {
    when    = "errors.rate > 0.5"
    actions = ["disable_analytics"]
  }
  level "minimal" {
    when    = "errors.rate > 0.1"
    actions = ["make_coffee"]
  }
}

recovery "custom" {
  when = "error.kind == \"close\""
  use  = "teleport"
}
