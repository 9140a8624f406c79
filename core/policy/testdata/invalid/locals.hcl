locals {
  a = local.b
  b = local.a
  c = env("LIFELINE_UNSET_VARIABLE")
}

degradation {
  level "minimal" {
    when = "errors.rate > ${local.a}"
  }
  recover {
    when = "true"
  }
}
