coordination "zookeeper" {
  url           = "nats://user:secret@nats.internal:4222,http://nats-2:4222"
  bucket_prefix = "my.bot"
  process_id    = "bot-1.example.com"
  lease_ttl     = "2s"
  interval      = "1500ms"
  replicas      = 7
  credentials   = " "
  colour        = "blue"
}

coordination "nats" {
  url = "nats://second:4222"
}
