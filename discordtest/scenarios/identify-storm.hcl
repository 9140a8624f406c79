# An identify storm: every session is invalidated and every connection
# dropped at once, so every shard must IDENTIFY anew, while the gateway
# sheds identifies for a while. Clients that ignore max_concurrency or
# retry op 9 at once show up in the ledger's identify_concurrency
# violations.
name        = "identify-storm"
description = "All sessions invalidated and dropped together; identifies shed for 20s."

step "invalidate_sessions" {
  at = "5s"
}

step "mass_disconnect" {
  at = "5s"
}

step "shed_identify" {
  at       = "5s"
  duration = "20s"
}
