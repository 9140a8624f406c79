package sdk_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
)

func check(name string, fields ...sdk.ConfigField) sdk.HealthCheck {
	return sdk.NewHealthCheck(sdk.Info{Name: name, Config: fields}, func(context.Context, sdk.CheckRequest) (sdk.Result, error) {
		return sdk.Result{Passed: true}, nil
	})
}

func action(name string) sdk.DegradationAction {
	return sdk.NewDegradationAction(sdk.Info{Name: name}, func(context.Context, sdk.ActionRequest) error { return nil }, nil)
}

func TestPluginsValidate(t *testing.T) {
	tests := []struct {
		name string
		p    sdk.Plugins
		want string // substring of the error; "" for valid
	}{
		{"one check", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db")}}, ""},
		{"same name, different kinds", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db")},
			DegradationActions: []sdk.DegradationAction{action("db")}}, ""},
		{"nothing", sdk.Plugins{}, "no plugins"},
		{"nil check", sdk.Plugins{HealthChecks: []sdk.HealthCheck{nil}}, "HealthChecks[0] is nil"},
		{"nil action", sdk.Plugins{DegradationActions: []sdk.DegradationAction{nil}}, "DegradationActions[0] is nil"},
		{"nil strategy", sdk.Plugins{RecoveryStrategies: []sdk.RecoveryStrategy{nil}}, "RecoveryStrategies[0] is nil"},
		{"bad name", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("9lives")}}, `name "9lives"`},
		{"empty name", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("")}}, `name ""`},
		{"dot in name", sdk.Plugins{DegradationActions: []sdk.DegradationAction{action("a.b")}}, `name "a.b"`},
		{"duplicate", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db"), check("db")}}, `two health_check plugins are named "db"`},
		{"unnamed field", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db", sdk.ConfigField{})}}, "config field with no name"},
		{"duplicate field", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db", sdk.ConfigField{Name: "a"}, sdk.ConfigField{Name: "a"})}}, `field "a" twice`},
		{"unknown type", sdk.Plugins{HealthChecks: []sdk.HealthCheck{check("db", sdk.ConfigField{Name: "a", Type: 42})}}, "unknown type 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, sdk.ErrInvalidPlugins) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalidPlugins containing %q", err, tt.want)
			}
		})
	}
}

func TestConfigGetters(t *testing.T) {
	c := sdk.Config{"s": "x", "n": 2.5, "i": 3, "b": true, "d": "1.5s", "dn": 2.0, "l": []any{"a", "b"}, "bad": []any{1.0}, "null": nil}
	if v, err := c.String("s", "def"); v != "x" || err != nil {
		t.Errorf("String(s) = %q, %v", v, err)
	}
	if v, err := c.String("missing", "def"); v != "def" || err != nil {
		t.Errorf("String(missing) = %q, %v", v, err)
	}
	if v, err := c.String("null", "def"); v != "def" || err != nil {
		t.Errorf("String(null) = %q, %v", v, err)
	}
	if _, err := c.String("n", ""); !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), `"n"`) {
		t.Errorf("String(n) error = %v", err)
	}
	if v, err := c.Number("n", 0); v != 2.5 || err != nil {
		t.Errorf("Number(n) = %v, %v", v, err)
	}
	if v, err := c.Number("i", 0); v != 3 || err != nil {
		t.Errorf("Number(i) = %v, %v", v, err)
	}
	if _, err := c.Number("s", 0); !errors.Is(err, sdk.ErrConfig) {
		t.Errorf("Number(s) error = %v", err)
	}
	if v, err := c.Bool("b", false); !v || err != nil {
		t.Errorf("Bool(b) = %v, %v", v, err)
	}
	if _, err := c.Bool("s", false); !errors.Is(err, sdk.ErrConfig) {
		t.Errorf("Bool(s) error = %v", err)
	}
	if v, err := c.Duration("d", 0); v != 1500*time.Millisecond || err != nil {
		t.Errorf("Duration(d) = %v, %v", v, err)
	}
	if v, err := c.Duration("dn", 0); v != 2*time.Second || err != nil {
		t.Errorf("Duration(dn) = %v, %v", v, err)
	}
	if v, err := c.Duration("missing", time.Minute); v != time.Minute || err != nil {
		t.Errorf("Duration(missing) = %v, %v", v, err)
	}
	if _, err := c.Duration("s", 0); !errors.Is(err, sdk.ErrConfig) {
		t.Errorf("Duration(s) error = %v", err)
	}
	if v, err := c.Strings("l", nil); !reflect.DeepEqual(v, []string{"a", "b"}) || err != nil {
		t.Errorf("Strings(l) = %v, %v", v, err)
	}
	if _, err := c.Strings("bad", nil); !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "bad[0]") {
		t.Errorf("Strings(bad) error = %v", err)
	}
	var dst struct {
		S string  `json:"s"`
		N float64 `json:"n"`
	}
	if err := c.Decode(&dst); err != nil || dst.S != "x" || dst.N != 2.5 {
		t.Errorf("Decode = %+v, %v", dst, err)
	}
	merged := sdk.Config{"a": 1.0, "b": 1.0}.Merge(sdk.Config{"b": 2.0})
	if !reflect.DeepEqual(merged, sdk.Config{"a": 1.0, "b": 2.0}) {
		t.Errorf("Merge = %v", merged)
	}
}

func TestValidateConfig(t *testing.T) {
	fields := []sdk.ConfigField{
		{Name: "url", Type: sdk.String, Required: true},
		{Name: "timeout", Type: sdk.Duration},
		{Name: "codes", Type: sdk.List},
		{Name: "strict", Type: sdk.Bool},
		{Name: "max", Type: sdk.Number},
		{Name: "headers", Type: sdk.Object},
		{Name: "extra", Type: sdk.Any},
	}
	tests := []struct {
		name string
		cfg  sdk.Config
		want []string // substrings; none means valid
	}{
		{"valid", sdk.Config{"url": "http://x", "timeout": "2s", "codes": []any{200.0}, "strict": true, "max": 3.0,
			"headers": map[string]any{"a": "b"}, "extra": []any{}}, nil},
		{"missing required", sdk.Config{}, []string{`"url" is required (string)`}},
		{"wrong types", sdk.Config{"url": 1.0, "strict": "yes", "max": "3", "codes": "200", "headers": "x"},
			[]string{`"url": want string, got number 1`, `"strict": want bool`, `"max": want number`, `"codes": want list`, `"headers": want object`}},
		{"bad duration", sdk.Config{"url": "x", "timeout": "soon"}, []string{`"soon" is not a duration`}},
		{"unknown key", sdk.Config{"url": "x", "tiemout": "1s"}, []string{`"tiemout" is not a setting of this plugin (known: codes, extra, headers, max, strict, timeout, url)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sdk.ValidateConfig(fields, tt.cfg)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("ValidateConfig: %v", err)
				}
				return
			}
			if !errors.Is(err, sdk.ErrConfig) {
				t.Fatalf("ValidateConfig = %v, want ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if err := sdk.ValidateConfig(nil, sdk.Config{"x": 1.0}); err == nil || !strings.Contains(err.Error(), "takes no configuration") {
		t.Errorf("no schema: %v", err)
	}
}

func sampleSnapshot() sdk.Snapshot {
	return sdk.Snapshot{
		Time:        time.Date(2026, 11, 27, 10, 0, 0, 5, time.UTC),
		Uptime:      time.Hour,
		Shard:       sdk.ShardInfo{ID: 1, Count: 4},
		Latency:     sdk.Latency{Heartbeat: 41 * time.Millisecond, HeartbeatAvg: 40 * time.Millisecond, RESTP50: time.Millisecond, RESTP95: 2 * time.Millisecond, RESTP99: 3 * time.Millisecond},
		Errors:      sdk.Errors{Rate: 0.25, InWindow: 2, Operations: 8, Consecutive: 1, Total: 9, Window: time.Minute},
		Gateway:     sdk.Gateway{State: "READY", Connected: true, HeartbeatInterval: 41250 * time.Millisecond, LastAckAge: time.Second, Sequence: 77, Reconnects: 1, Resumes: 2, Identifies: 3, Dispatches: 99, LastCloseCode: 4000},
		REST:        sdk.REST{Requests: 10, RateLimited: 1, ServerErrors: 2, Failures: 3},
		Breaker:     sdk.BreakerView{State: "CLOSED", Failures: 4, Rejections: 5},
		Health:      sdk.HealthView{Score: 66.7, Status: "DEGRADED", Trend: "stable"},
		Degradation: sdk.DegradationView{Level: "MINIMAL", Since: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)},
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := sampleSnapshot()
	if got := sdk.SnapshotFromProto(sdk.SnapshotToProto(s)); !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	if got := sdk.SnapshotFromProto(sdk.SnapshotToProto(sdk.Snapshot{})); !reflect.DeepEqual(got, sdk.Snapshot{}) {
		t.Fatalf("zero round trip: %+v", got)
	}
	if got := sdk.SnapshotFromProto(nil); !reflect.DeepEqual(got, sdk.Snapshot{}) {
		t.Fatalf("nil: %+v", got)
	}
	e := sdk.ErrorInfo{Message: "closed", CloseCode: 4000, Kind: "close", Source: "conn", Fatal: true, Resumable: true}
	if got := sdk.ErrorInfoFromProto(sdk.ErrorInfoToProto(e)); got != e {
		t.Fatalf("error info: %+v", got)
	}
	th := sdk.Threshold{Set: true, IsDuration: true, Value: 1.5, Duration: 1500 * time.Millisecond}
	if got := sdk.ThresholdFromProto(sdk.ThresholdToProto(th)); got != th {
		t.Fatalf("threshold: %+v", got)
	}
}

func TestDescriptorFromProtoRejectsGarbage(t *testing.T) {
	tests := []struct {
		name string
		d    *pb.Descriptor
		want string
	}{
		{"unknown kind", &pb.Descriptor{Name: "x", Kind: 99}, "unknown kind"},
		{"unspecified kind", &pb.Descriptor{Name: "x"}, "unknown kind"},
		{"bad name", &pb.Descriptor{Name: "no spaces", Kind: pb.Kind_KIND_HEALTH_CHECK}, "name"},
		{"bad default", &pb.Descriptor{Name: "x", Kind: pb.Kind_KIND_HEALTH_CHECK, Config: []*pb.ConfigField{{Name: "a", DefaultJson: "{"}}}, "not JSON"},
		{"bad field type", &pb.Descriptor{Name: "x", Kind: pb.Kind_KIND_HEALTH_CHECK, Config: []*pb.ConfigField{{Name: "a", Type: 17}}}, "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdk.DescriptorFromProto(tt.d)
			if !errors.Is(err, sdk.ErrInvalidPlugins) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalidPlugins containing %q", err, tt.want)
			}
		})
	}
	d := sdk.Descriptor{Kind: sdk.KindRecoveryStrategy, Info: sdk.Info{Name: "s", Version: "1.2.3", Description: "d",
		Config: []sdk.ConfigField{{Name: "n", Type: sdk.Number, Required: true, Description: "x", Default: 3.0}}}}
	p, err := sdk.DescriptorToProto(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := sdk.DescriptorFromProto(p)
	if err != nil || !reflect.DeepEqual(back, d) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	if _, err := sdk.DescriptorToProto(sdk.Descriptor{Kind: sdk.KindHealthCheck, Info: sdk.Info{Name: "x",
		Config: []sdk.ConfigField{{Name: "f", Default: math.Inf(1)}}}}); !errors.Is(err, sdk.ErrInvalidPlugins) {
		t.Fatalf("unencodable default: %v", err)
	}
}

func TestFieldTypeAndKindStrings(t *testing.T) {
	for ft, want := range map[sdk.FieldType]string{sdk.Any: "any", sdk.String: "string", sdk.Duration: "duration", sdk.Object: "object", 99: "FieldType(99)"} {
		if got := ft.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(ft), got, want)
		}
	}
	if sdk.KindHealthCheck.String() != "health_check" {
		t.Error(sdk.KindHealthCheck.String())
	}
	for _, m := range []sdk.RecoveryMode{sdk.Resume, sdk.Reconnect, sdk.Reidentify} {
		if !m.Valid() {
			t.Errorf("%s not valid", m)
		}
	}
	if sdk.RecoveryMode("restart").Valid() {
		t.Error("restart valid")
	}
}
