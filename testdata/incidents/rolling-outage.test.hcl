# Expectations over rolling-outage.jsonl replayed with policies/medium.hcl
# (lifeline policy test policies/medium.hcl --trace rolling-outage.jsonl
# --tests rolling-outage.test.hcl). The gateway refuses connections for
# 100s from the "fault" mark: a minute down (gateway.down_for > 60s) makes
# CRITICAL, which holds until the gateway is back.

assert "read-only once the gateway has been gone for a while" {
  level  = "critical"
  within = "2m"
  of     = "mark:fault"
}

assert "back to none by the end" {
  level  = "none"
  within = "30s"
  of     = "end"
}
