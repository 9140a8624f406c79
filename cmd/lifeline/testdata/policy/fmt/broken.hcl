connection {
  intents = ["Guilds"
}
