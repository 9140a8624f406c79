# Expectations for policies/medium.hcl over the rolling-outage incident.

assert "critical never activates" {
  level = "critical"
  never = true
}

assert "degraded as soon as the latency spike starts" {
  level  = ">= minimal"
  within = "1s"
  of     = "mark:fault"
}

assert "severe within 5s of the first gateway error" {
  level  = ">= severe"
  within = "5s"
  of     = "first ERROR_OCCURRED"
}

assert "back to none by the end" {
  level  = "none"
  within = "1m"
  of     = "end"
}
