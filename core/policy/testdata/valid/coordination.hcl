# A process of a fleet: three lifeline processes share the bot's shards
# through NATS JetStream.
connection {
  token  = env("BOT_TOKEN")
  shards = 64
}

coordination "nats" {
  url                = "nats://nats-1.internal:4222, nats://nats-2.internal:4222"
  bucket_prefix      = "mybot"
  process_id         = env("POD_NAME", "bot-0")
  lease_ttl          = "6s"
  interval           = "500ms"
  replicas           = 3
  memory             = false
  credentials        = "/etc/nats/bot.creds"
  stop_on_lease_loss = true
  save_interval      = "2s"
}
