# A policy file layered over the medium preset by the tests: it sets a few
# attributes, replaces the checks, adds a plugin, and leaves the ladder and
# the recovery rules to the preset.
connection { intents = ["Guilds", "GuildMessages"] }

health {
  interval = "20s"

  check "database" {
    plugin   = "pgping"
    critical = true
    config   = { dsn = env("DB_DSN"), pool = 4 }
  }
  check "latency" {
    type      = "latency"
    threshold = "750ms"
  }
}

degradation {
  recovery_delay = "40s"
}

plugin "pgping" {
  path   = "./bin/pgping"
  sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  args   = ["--verbose"]
}
