# A zombie connection: shard 0's heartbeats go unanswered while its TCP
# connection stays up, dispatches keep being queued for it, and only after
# a long while does the connection die. A good client notices the missing
# ACK at its next heartbeat, reconnects and RESUMEs, and loses nothing.
name        = "zombie"
description = "Shard 0 stops getting heartbeat ACKs, keeps its TCP connection, then drops."

step "dispatch" {
  at    = "5s"
  count = 3
}

step "stall_acks" {
  at       = "10s"
  duration = "3m"
  shards   = [0]
}

step "dispatch" {
  at     = "30s"
  count  = 5
  shards = [0]
}

step "drop" {
  at     = "3m"
  shards = [0]
}
