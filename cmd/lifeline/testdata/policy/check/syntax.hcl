# An HCL syntax error: the connection block is never closed and an
# attribute has no value.
connection {
  intents = ["Guilds"]
  auto_reconnect =

health {
  interval = "30s"
}
