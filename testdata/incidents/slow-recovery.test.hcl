# Expectations over slow-recovery.jsonl replayed with policies/medium.hcl.
# Half the REST requests fail for 30s, then a tenth fail and every request
# is 1.5s slower for a minute: severe soon after the fault, never critical
# (the gateway stays up), back to none by the end.

assert "severe within 30s of the fault" {
  level  = ">= severe"
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
