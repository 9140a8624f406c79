# Stalled sessions: connections stay up and ACKs keep coming, but
# dispatches stop; then every connection drops. A client can only notice
# through its own event watchdog; after RESUME the held dispatches arrive.
name        = "stalled-sessions"
description = "Dispatches stop while ACKs continue, then a mass disconnect."

step "stall_dispatches" {
  at       = "5s"
  duration = "1m"
}

step "dispatch" {
  at    = "10s"
  count = 5
}

step "mass_disconnect" {
  at = "1m"
}
