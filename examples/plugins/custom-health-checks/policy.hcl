# The worker-heartbeat plugin next to the built-in checks. Build the plugin
# first: go build -o bin/worker-heartbeat .
health {
  interval = "10s"
  timeout  = "2s"

  check "latency" {
    type = "latency"
  }
  check "gateway" {
    type     = "gateway"
    critical = true
  }
  check "worker" {
    plugin = "worker-heartbeat"
    config = {
      path    = env("WORKER_HEARTBEAT", "/tmp/worker.heartbeat")
      max_age = "30s"
    }
  }
}

degradation {
  recovery_delay = "30s"

  # One failing check of three leaves a score of 66.7: shed the extras.
  level "minimal" {
    when    = "health.score < 80"
    actions = ["disable_analytics"]
  }
  level "severe" {
    when    = "health.score < 40"
    actions = ["disable_non_critical_features"]
  }
  recover {
    when = "health.score >= 90"
  }
}

plugin "worker-heartbeat" {
  path = "./bin/worker-heartbeat"
}
