# Misaligned equals signs, odd indentation and spacing: policy fmt fixes
# the layout and nothing else (comments and values stay).
connection {
    token = env("DISCORD_TOKEN")
intents=["Guilds","GuildMessages"]
  max_reconnect_attempts   =   10
   reconnect_delay = "5s" # first delay
}

degradation {
  level "moderate" {
      when = "errors.rate > 0.1"
    actions = [ "disable_analytics" ]
  }
  recover { when = "errors.rate < 0.05" }
}
