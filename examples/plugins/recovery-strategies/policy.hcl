# Recovery through a plugin first, then a strategy written in Go (added by
# main.go with AddRecoveryStrategy, priority 20). Build the plugin first:
# go build -o bin/resumer ./resumer
recovery "plugin-resume" {
  priority     = 5
  when         = "!error.fatal"
  use          = "resumer.resume"
  max_attempts = 1
}

plugin "resumer" {
  path   = "./bin/resumer"
  config = { kinds = ["close", "zombie"] }
}
