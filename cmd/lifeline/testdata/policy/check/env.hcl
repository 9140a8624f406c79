# env() reads the environment of `lifeline policy check`: the golden test
# sets LIFELINE_TEST_DSN and leaves LIFELINE_TEST_UNSET unset.
health {
  check "db" {
    plugin = "pgping"
    config = {
      dsn      = env("LIFELINE_TEST_DSN")
      password = env("LIFELINE_TEST_UNSET")
      replica  = env("LIFELINE_TEST_UNSET", "none")
    }
  }
}

plugin "pgping" {
  path = "./bin/pgping"
}
