# A token written into the file is an error, and neither the diagnostic
# nor any other output may show it.
connection {
  token   = "MTIzNDU2Nzg5MDEy.cli-golden-secret"
  intents = ["Guilds", "GuildMesages"]
}
