package pluginhost

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

// describeSeeds are DescribeResponses a plugin might send: well formed,
// and broken in the ways a buggy or hostile plugin would.
func describeSeeds(f *testing.F) {
	str := sdk.String
	for _, resp := range []*pb.DescribeResponse{
		{},
		{Plugins: []*pb.Descriptor{{Name: "probe", Kind: pb.Kind_KIND_HEALTH_CHECK, Version: "1.0.0",
			Config: []*pb.ConfigField{{Name: "url", Type: pb.FieldType(str), Required: true}, {Name: "timeout", Type: pb.FieldType(sdk.Duration), DefaultJson: `"3s"`}}}}},
		{Plugins: []*pb.Descriptor{
			{Name: "a", Kind: pb.Kind_KIND_HEALTH_CHECK}, {Name: "b", Kind: pb.Kind_KIND_HEALTH_CHECK},
			{Name: "kick", Kind: pb.Kind_KIND_RECOVERY_STRATEGY}, {Name: "notify", Kind: pb.Kind_KIND_DEGRADATION_ACTION}}},
		{Plugins: []*pb.Descriptor{{Name: "dup", Kind: pb.Kind_KIND_HEALTH_CHECK}, {Name: "dup", Kind: pb.Kind_KIND_HEALTH_CHECK}}},
		{Plugins: []*pb.Descriptor{{Name: "", Kind: pb.Kind_KIND_HEALTH_CHECK}}},
		{Plugins: []*pb.Descriptor{{Name: "nokind"}}},
		{Plugins: []*pb.Descriptor{{Name: "k", Kind: pb.Kind(42)}}},
		{Plugins: []*pb.Descriptor{{Name: "bad default", Kind: pb.Kind_KIND_HEALTH_CHECK,
			Config: []*pb.ConfigField{{Name: "x", Type: pb.FieldType(99), DefaultJson: "{not json"}}}}},
		{Plugins: []*pb.Descriptor{{Name: "p", Kind: pb.Kind_KIND_HEALTH_CHECK, Version: "not-semver",
			Config: []*pb.ConfigField{{Name: "x"}, {Name: "x"}, {Name: "", Required: true}}}}},
		{Plugins: []*pb.Descriptor{{Name: strings.Repeat("n", 300), Kind: pb.Kind_KIND_DEGRADATION_ACTION, Description: "\x00\u00ff"}}},
	} {
		b, err := proto.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Add([]byte("\x0a\x80\x80\x80\x80\x10"))
}

// FuzzDescribeResponse decodes a plugin's answer to Describe as the host
// does: the wire bytes, then checkDescriptors, then the checks against a
// policy's uses. Whatever the plugin sends, the host never panics; what it
// accepts is valid (each descriptor passes its own Validate, names are
// unique per kind and survive the round trip to the wire and back); what it
// refuses is an ErrBadResponse.
func FuzzDescribeResponse(f *testing.F) {
	describeSeeds(f)
	spec := Spec{Name: "fuzz", Config: map[string]any{"url": "http://127.0.0.1/"},
		Checks:     []CheckUse{{Name: "probe", Config: map[string]any{"timeout": "1s"}}, {Name: "other"}},
		Actions:    []string{"notify"},
		Strategies: []string{"kick"}}
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp pb.DescribeResponse
		if err := proto.Unmarshal(b, &resp); err != nil {
			return // gRPC would have failed the call: the host sees a transport error
		}
		desc, err := checkDescriptors(&resp)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("checkDescriptors error %v is not ErrBadResponse", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, d := range desc {
			if err := d.Validate(); err != nil {
				t.Fatalf("accepted an invalid descriptor %+v: %v", d, err)
			}
			key := string(d.Kind) + "/" + d.Name
			if seen[key] {
				t.Fatalf("accepted two %s", key)
			}
			seen[key] = true
			p, err := sdk.DescriptorToProto(d)
			if err != nil {
				t.Fatalf("an accepted descriptor does not go back to the wire: %v", err)
			}
			back, err := sdk.DescriptorFromProto(p)
			if err != nil || back.Name != d.Name || back.Kind != d.Kind || len(back.Config) != len(d.Config) {
				t.Fatalf("round trip of %+v: %+v, %v", d, back, err)
			}
		}
		if err := checkUses(spec, desc); err != nil && !errors.Is(err, ErrRefused) {
			t.Fatalf("checkUses error %v is not ErrRefused", err)
		}
		for _, c := range spec.Checks {
			if d, err := resolveCheck(c.Name, desc); err == nil && d.Kind != sdk.KindHealthCheck {
				t.Fatalf("check %q resolved to a %s", c.Name, d.Kind)
			}
		}
		_ = describe(desc)
	})
}

// fuzzServices is the HostServices behind FuzzHostRequests.
type fuzzServices struct{}

func (fuzzServices) Snapshot() metrics.Snapshot { return metrics.Snapshot{} }
func (fuzzServices) RequestRecovery(_ context.Context, mode, _ string) error {
	switch mode {
	case "resume", "reconnect", "reidentify", "restart_client":
		return nil
	}
	return errors.New("the host was handed an unknown mode")
}
func (fuzzServices) SetFeature(string, bool) error { return nil }

// FuzzHostRequests decodes what a plugin sends back to the host over the
// broker (a log line, a recovery request, a feature flag, a snapshot
// request) and serves it as the host does: the sdk's host server over this
// package's services. Whatever the plugin sends, the host never panics,
// never passes an unknown recovery mode on, and answers a refusal with a
// gRPC status of its own (InvalidArgument or FailedPrecondition), never
// Internal (a recovered panic).
func FuzzHostRequests(f *testing.F) {
	for _, m := range []proto.Message{
		&pb.LogRequest{Level: pb.LogLevel(sdk.LogWarn), Message: "resuming", Fields: []*pb.LogField{{Key: "seq", Value: "42"}}},
		&pb.LogRequest{Level: pb.LogLevel(77), Message: "line\n2026-11-27T00:00:00Z [ERROR] forged", Fields: []*pb.LogField{{Key: ""}, {Value: "v"}}},
		&pb.RecoveryModeRequest{Mode: "resume", Reason: "stale"},
		&pb.RecoveryModeRequest{Mode: "RESUME"},
		&pb.RecoveryModeRequest{Mode: "rm -rf"},
		&pb.SetFeatureRequest{Name: "music", Enabled: true},
		&pb.SetFeatureRequest{},
		&pb.SnapshotRequest{},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for kind := uint8(0); kind < 4; kind++ {
			f.Add(kind, b)
		}
	}
	h := New(Options{Services: fuzzServices{}, Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Trace})})
	defer h.Stop()
	srv := sdk.NewHostServer(&services{h: h, name: "fuzz", log: h.o.Logger.Named("plugin.fuzz")})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		var err error
		switch kind % 4 {
		case 0:
			var r pb.LogRequest
			if proto.Unmarshal(b, &r) != nil {
				return
			}
			_, err = srv.Log(ctx, &r)
		case 1:
			var r pb.RecoveryModeRequest
			if proto.Unmarshal(b, &r) != nil {
				return
			}
			_, err = srv.RequestRecovery(ctx, &r)
			if err == nil && !sdk.RecoveryMode(r.GetMode()).Valid() {
				t.Fatalf("recovery mode %q accepted", r.GetMode())
			}
		case 2:
			var r pb.SetFeatureRequest
			if proto.Unmarshal(b, &r) != nil {
				return
			}
			_, err = srv.SetFeature(ctx, &r)
			if err == nil && r.GetName() == "" {
				t.Fatal("an empty feature name accepted")
			}
		case 3:
			var r pb.SnapshotRequest
			if proto.Unmarshal(b, &r) != nil {
				return
			}
			_, err = srv.GetSnapshot(ctx, &r)
		}
		if err == nil {
			return
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.FailedPrecondition:
		default:
			t.Fatalf("kind %d: %v", kind%4, err)
		}
	})
}
