# Expectations that policies/large.hcl does not meet on the rolling-outage
# incident: its 60s recovery_delay and strict recover condition keep it
# degraded longer than these allow.

assert "critical never activates" {
  level = "critical"
  never = true
}

assert "never above minimal" {
  level = ">= moderate"
  never = true
}

assert "back to none within 2m of the fault clearing" {
  level  = "none"
  within = "2m"
  of     = "mark:fault cleared"
}
