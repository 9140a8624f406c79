# An invalid-session loop: op 9 again and again, resumable or not, while
# identifies are shed. Clients that re-IDENTIFY at once on every op 9
# (discordgo does) burn through identify windows and the session-start
# budget; good clients wait 1-5 s, resume when d=true, and pace identifies.
name        = "invalid-session-loop"
description = "Repeated op 9 (d=false and d=true) while identifies are shed."

step "invalid_session" {
  at = "5s"
}

step "shed_identify" {
  at       = "5s"
  duration = "15s"
}

step "invalid_session" {
  at        = "25s"
  resumable = true
}

step "invalid_session" {
  at = "35s"
}

step "invalid_session" {
  at        = "45s"
  resumable = true
}

step "invalid_session" {
  at = "55s"
}
