# Expectations over testdata/incidents/rate-limit-storm.jsonl: 40 s of 429s
# should shed load (moderate or worse) soon after the storm starts, never
# go critical, and be over before the recording ends.

assert "critical never activates" {
  level = "critical"
  never = true
}

assert "load shed within 30s of the storm" {
  level  = ">= moderate"
  within = "30s"
  of     = "mark:fault"
}

assert "back to none in the last minute" {
  level  = "none"
  within = "1m"
  of     = "end"
}
