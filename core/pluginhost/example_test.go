package pluginhost_test

import (
	"fmt"

	"github.com/lifeline-bot/lifeline/core/pluginhost"
	"github.com/lifeline-bot/lifeline/core/policy"
)

// SpecsFromPolicy turns a policy's plugin blocks into what Reconcile runs,
// with what each block's users need from the plugin.
func ExampleSpecsFromPolicy() {
	p, err := policy.LoadSource("policy.hcl", []byte(`
health {
  check "database" {
    plugin = "pgping"
    config = { dsn = "postgres://127.0.0.1/bot" }
  }
}
degradation {
  level "moderate" {
    when    = "errors.rate > 0.1"
    actions = ["disable_analytics", "notify.webhook"]
  }
  recover { when = "errors.rate < 0.05" }
}
recovery "kick" {
  use = "pgping.failover"
}
plugin "pgping" { path = "./bin/pgping" }
plugin "notify" {
  path   = "./bin/notify"
  config = { url = "http://127.0.0.1:9000/hook" }
}
plugin "unused" { path = "./bin/unused" }
`), policy.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range pluginhost.SpecsFromPolicy(p) {
		fmt.Printf("%s %s checks=%d actions=%v strategies=%v config=%v\n", s.Name, s.Path, len(s.Checks), s.Actions, s.Strategies, s.Config)
	}
	// Output:
	// pgping ./bin/pgping checks=1 actions=[] strategies=[failover] config=map[]
	// notify ./bin/notify checks=0 actions=[webhook] strategies=[] config=map[url:http://127.0.0.1:9000/hook]
}
