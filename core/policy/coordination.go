package policy

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// CoordinationNATS is the one coordination kind there is: a fleet of
// lifeline processes sharing NATS JetStream key-value buckets.
const CoordinationNATS = "nats"

// Coordination is the `coordination "nats"` block: this process is one of
// a fleet of lifeline processes running one bot (one token, one shard
// count), coordinated through NATS JetStream. Without the block
// (Policy.Coordination nil) the process runs its shards alone, in memory,
// as it always has.
//
// The block is read when the process starts; a policy reload does not
// change it (restart the process to join another fleet).
type Coordination struct {
	// Kind is the block's label: CoordinationNATS.
	Kind string
	// URL is the NATS server, or several separated by commas
	// ("nats://nats-1:4222,nats://nats-2:4222"). Required.
	URL string
	// BucketPrefix starts the names of the fleet's buckets
	// ("<prefix>_members"); two bots sharing one NATS deployment need two
	// prefixes. Default: "lifeline".
	BucketPrefix string
	// ProcessID is this process's ID in the fleet: letters, digits, '-',
	// '_' and '='. A StatefulSet's pod name makes a good one (a restarted
	// pod takes its shards back). Default: "" (the host name and 6 random
	// hex digits).
	ProcessID string
	// LeaseTTL is how long a process's heartbeat lives: the shards of a
	// process that dies move LeaseTTL (plus one Interval) after its last
	// heartbeat. Every process of a fleet must use the same. Default: 10s.
	LeaseTTL time.Duration
	// Interval is the heartbeat and reconcile period. Default: 0, which
	// means LeaseTTL/10, at most 1s.
	Interval time.Duration
	// Replicas is each bucket's replica count when this process creates
	// it (3 on a 3-node cluster). Default: 1.
	Replicas int
	// Memory keeps the buckets in the servers' memory instead of on disk.
	// Default: false.
	Memory bool
	// Credentials is a NATS credentials (.creds) file. Default: "" (none).
	Credentials string
	// StopOnLeaseLoss stops this process's shards when its lease expires
	// (it could not reach NATS for LeaseTTL), instead of keeping them
	// running. Default: false.
	StopOnLeaseLoss bool
	// SaveInterval is how often each running shard's session is saved
	// for a next owner, so that the shards of a process killed without a
	// handover are RESUMEd rather than IDENTIFYed. Default: 5s.
	SaveInterval time.Duration

	// Ranges locates the block and its attributes in the file.
	Ranges Ranges
}

// Defaults of the coordination block.
const (
	DefaultBucketPrefix = "lifeline"
	DefaultLeaseTTL     = 10 * time.Second
	DefaultSaveInterval = 5 * time.Second
)

var (
	bucketPrefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	processIDRE    = regexp.MustCompile(`^[A-Za-z0-9_=-]+$`)
)

// coordination decodes and validates the coordination block.
func (d *decoder) coordination(b *hcl.Block) *Coordination {
	c, r := d.content(b, blockAttrs["coordination"], nil)
	out := &Coordination{Kind: b.Labels[0], BucketPrefix: DefaultBucketPrefix, LeaseTTL: DefaultLeaseTTL,
		Replicas: 1, SaveInterval: DefaultSaveInterval, Ranges: r}
	if out.Kind != CoordinationNATS {
		d.errAt(b.LabelRanges[0], "Unknown coordination kind",
			fmt.Sprintf("coordination %q: the only kind is \"nats\" (a fleet over NATS JetStream); leave the block out to run every shard in this process.", out.Kind))
	}
	at := c.Attributes
	if a := at["url"]; a != nil {
		if v, ok := d.str(a); ok {
			if problem := natsURLProblem(v); problem != "" {
				d.attrErr(a, "Invalid NATS URL", problem)
			} else {
				out.URL = v
			}
		}
	} else {
		d.errAt(b.DefRange, "Missing NATS URL",
			fmt.Sprintf("coordination %q needs url = \"nats://HOST:4222\" (several servers separated by commas).", out.Kind))
	}
	if a := at["bucket_prefix"]; a != nil {
		if v, ok := d.str(a); ok {
			if !bucketPrefixRE.MatchString(v) || len(v) > 64 {
				d.attrErr(a, "Invalid bucket prefix",
					fmt.Sprintf("%q: a bucket prefix has 1 to 64 letters, digits, '-' and '_' (NATS bucket names).", v))
			} else {
				out.BucketPrefix = v
			}
		}
	}
	if a := at["process_id"]; a != nil {
		if v, ok := d.str(a); ok {
			switch {
			case v == "":
				// env("POD_NAME", ""): the default, a generated ID.
			case !processIDRE.MatchString(v) || len(v) > 128:
				d.attrErr(a, "Invalid process ID",
					fmt.Sprintf("%q: a process ID has letters, digits, '-', '_' and '=' only (it becomes part of NATS keys, where '.' separates tokens); use a short host or pod name.", v))
			default:
				out.ProcessID = v
			}
		}
	}
	ttlOK := true
	if a := at["lease_ttl"]; a != nil {
		if v, ok := d.duration(a, 100*time.Millisecond, 10*time.Minute); ok {
			out.LeaseTTL = v
		} else {
			ttlOK = false
		}
	}
	if a := at["interval"]; a != nil {
		if v, ok := d.duration(a, 10*time.Millisecond, 10*time.Minute); ok {
			out.Interval = v
			if ttlOK && v > out.LeaseTTL/2 {
				d.attrErr(a, "Interval too long for the lease",
					fmt.Sprintf("interval (%s) must be at most half of lease_ttl (%s): a process heartbeats every interval and must do so at least twice per lease.", v, out.LeaseTTL))
			}
		}
	}
	if a := at["replicas"]; a != nil {
		if v, ok := d.integer(a, 1, 5); ok {
			out.Replicas = v
		}
	}
	if a := at["memory"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.Memory = v
		}
	}
	if a := at["credentials"]; a != nil {
		if v, ok := d.str(a); ok {
			if strings.TrimSpace(v) == "" {
				d.attrErr(a, "Empty credentials path", "credentials must name a NATS .creds file, or be left out.")
			}
			out.Credentials = v
		}
	}
	if a := at["stop_on_lease_loss"]; a != nil {
		if v, ok := d.boolean(a); ok {
			out.StopOnLeaseLoss = v
		}
	}
	if a := at["save_interval"]; a != nil {
		if v, ok := d.duration(a, 10*time.Millisecond, time.Hour); ok {
			out.SaveInterval = v
		}
	}
	return out
}

// natsURLProblem returns why s is not a NATS server list, "" when it is.
func natsURLProblem(s string) string {
	if strings.TrimSpace(s) == "" {
		return "url must name a NATS server, such as \"nats://127.0.0.1:4222\"."
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		u, err := url.Parse(part)
		if err != nil || u.Host == "" {
			return fmt.Sprintf("%q is not a server URL: write nats://HOST:PORT (several separated by commas).", part)
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Sprintf("%q: the scheme must be nats, tls, ws or wss; got %q.", part, u.Scheme)
		}
		if u.User != nil {
			return fmt.Sprintf("%q holds credentials: a policy file must not (use credentials = \"FILE.creds\").", redactUserinfo(u))
		}
	}
	return ""
}

// redactUserinfo returns u without its user information, for messages.
func redactUserinfo(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
