# Mistakes inside expr condition strings: each diagnostic points at the
# exact column inside the string, not at the start of the attribute.
degradation {
  level "minimal" {
    when    = "latency.heartbeat > 500 || errors.rte > 0.1"
    actions = ["reduce_logging_level"]
  }
  level "moderate" {
    when    = "errors.rate > \"high\""
    actions = ["disable_analytics"]
  }
  level "severe" {
    when    = "health.score"
    actions = ["increase_timeouts"]
  }
  recover {
    when = <<-EOT
      errors.rate < 0.05 &&
        error.close_code == 4000
    EOT
  }
}

recovery "restart" {
  priority = 1
  when     = "error.mesage contains 'ECONNRESET'"
  use      = "restart_client"
}
