# Round-trip fixture: the thresholds shorthand with one declared level.
degradation {
  enabled            = true
  recovery_threshold = 0.4
  thresholds {
    latency            = "700ms"
    error_rate         = 0.08
    consecutive_errors = 4
  }
  level "critical" {
    when    = "!gateway.connected && gateway.last_ack_age > 120000"
    actions = ["enable_read_only_mode", "shutdown_non_essential_services"]
  }
}
