# The policy the `lifeline run` tests start with; they edit a copy.
connection {
  max_reconnect_attempts = 0 # never give up while a scenario plays
}

health {
  interval = "1s"
  timeout  = "500ms"
  retries  = 0

  check "gateway" {
    type      = "gateway"
    threshold = "5s"
    critical  = true
  }
}
