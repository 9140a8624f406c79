# A scenario with two mistakes, for the error-location test.
name = "malformed"

step "drop" {
  at = "10s"
}

step "close" {
  at = "20s"
}

step "stall_acks" {
  at       = "soon"
  duration = "1m"
}
