# A valid policy with warnings: a privileged intent, a duplicate intent and
# a plugin nothing uses. Warnings do not fail the check.
connection {
  token   = env("DISCORD_TOKEN")
  intents = ["Guilds", "GuildMessages", "MessageContent", "guilds"]
}

plugin "unused" {
  path = "./bin/unused"
}
