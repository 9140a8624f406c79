# A rolling gateway outage: shards lose their connections one after the
# other, and each time the gateway refuses (then black-holes) new
# connections for a while, so reconnects fail and must back off. Guilds go
# unavailable and come back as the gateway recovers.
name        = "rolling-outage"
description = "Shards drop one by one while the gateway refuses, then black-holes, new connections."

step "drop" {
  at     = "10s"
  shards = [0]
}

step "outage" {
  at       = "10s"
  duration = "30s"
  mode     = "refuse"
}

step "drop" {
  at     = "50s"
  shards = [1]
}

step "outage" {
  at       = "50s"
  duration = "30s"
  mode     = "blackhole"
}

step "guild_outage" {
  at       = "1m30s"
  duration = "1m"
}

step "drop" {
  at     = "2m"
  shards = [2, 3]
}

step "latency_spike" {
  at       = "2m"
  delay    = "2s"
  duration = "1m"
}
