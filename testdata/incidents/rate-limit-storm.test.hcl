# Expectations over rate-limit-storm.jsonl replayed with policies/medium.hcl.
# 40s of 429s should shed load (moderate or worse) soon after the storm
# starts, never go critical, and be over by the end.

assert "load shed within 30s of the storm" {
  level  = ">= moderate"
  within = "30s"
  of     = "mark:fault"
}

assert "critical never activates" {
  level = "critical"
  never = true
}

assert "back to none by the end" {
  level  = "none"
  within = "30s"
  of     = "end"
}
