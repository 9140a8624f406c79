# A REST rate-limit storm: latency first, then shared and global 429s,
# flapping 5xx, and finally a Cloudflare ban. Clients must honour
# retry_after, back off on 5xx, and stop hammering during the ban.
name        = "ratelimit-storm"
description = "REST latency, 429 storms (shared, then global), 502 flapping, then a Cloudflare ban."

step "rest_latency" {
  at       = "5s"
  delay    = "500ms"
  duration = "30s"
}

step "rest_rate_limit" {
  at          = "10s"
  duration    = "30s"
  retry_after = "5s"
}

step "rest_rate_limit" {
  at       = "45s"
  duration = "10s"
  global   = true
}

step "rest_errors" {
  at       = "1m"
  rate     = 0.3
  status   = 502
  duration = "30s"
}

step "cloudflare_ban" {
  at       = "1m30s"
  duration = "1m"
}
