# Expectations over zombie-storm.jsonl replayed with policies/medium.hcl.
# Heartbeat ACKs stall three times: each zombie is detected and resumed at
# once, so the gateway is never gone long enough for read-only mode.

assert "never read-only" {
  level = "critical"
  never = true
}

assert "back to none by the end" {
  level  = "none"
  within = "30s"
  of     = "end"
}
