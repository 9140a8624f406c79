# Only declared levels exist when there is no thresholds block.
health {
  enabled = false
}

degradation {
  level "moderate" {
    when    = "errors.rate > 0.1 || errors.consecutive >= 3"
    actions = ["disable_analytics", "increase_timeouts"]
  }
  recover {
    when = "errors.rate < 0.05 && health.score >= 80"
  }
}
