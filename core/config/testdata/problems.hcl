# Several mistakes at once; the tests expect every one reported.
connection {
  intents         = ["Guilds", "GuildMesages", "MessageContent"]
  reconnect_delay = "soon"
}

health {
  retries = 42
}

degradation {
  level "moderate" {
    when    = "errors.rate > 0.2 && latency.heartbeet > 500"
    actions = ["disable_analytic", "metrics.pause"]
  }
  level "minimal" {
    when    = "errors.rate > 0.1"
    actions = ["reduce_logging_level"]
  }
  recover {
    when = "errors.rate < 0.05"
  }
}
