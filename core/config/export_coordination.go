package config

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/lifeline-bot/lifeline/core/policy"
)

// coordinationNode is the exported `coordination "nats"` block: every
// attribute with its effective value (the interval and credentials only
// when set), so the export loads back to the same fleet settings.
func coordinationNode(c *policy.Coordination) *node {
	n := &node{typ: "coordination", label: c.Kind}
	n.add("url", cty.StringVal(c.URL), "")
	n.add("bucket_prefix", cty.StringVal(c.BucketPrefix), "")
	if c.ProcessID != "" {
		n.add("process_id", cty.StringVal(c.ProcessID), "")
	}
	n.add("lease_ttl", durVal(c.LeaseTTL), "")
	if c.Interval > 0 {
		n.add("interval", durVal(c.Interval), "")
	}
	n.add("replicas", intVal(c.Replicas), "")
	n.add("memory", cty.BoolVal(c.Memory), "")
	if c.Credentials != "" {
		n.add("credentials", cty.StringVal(c.Credentials), "")
	}
	n.add("stop_on_lease_loss", cty.BoolVal(c.StopOnLeaseLoss), "")
	n.add("save_interval", durVal(c.SaveInterval), "")
	return n
}
