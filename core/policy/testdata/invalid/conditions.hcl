locals {
  base = "latency.heartbet > 100"
}

degradation {
  level "minimal" {
    when = "errors.rat > 0.1"
  }
  level "moderate" {
    when = "gateway.state == 1 || \"tab\there\" == gateway.sate"
  }
  level "severe" {
    when = "errors.rate * 100"
  }
  level "critical" {
    when = <<-EOT
      errors.rate > 0.5 &&
        error.kind == "close"
    EOT
  }
  recover {
    when = "latency.heartbeat < duration(\"5 seconds\") && ("
  }
}

recovery "bad" {
  use  = "resume"
  when = "error.close_cod == 4000 || now() > 0"
}

recovery "locals" {
  use  = "reconnect"
  when = "error.kind == 'zombie' && ${local.base}"
}
