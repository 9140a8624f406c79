package sdk_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lifeline-bot/lifeline/sdk"
	pb "github.com/lifeline-bot/lifeline/sdk/proto"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

// recorder is a health check that keeps the last request it got.
type recorder struct {
	last  atomic.Pointer[sdk.CheckRequest]
	panic bool
}

func (r *recorder) Info() sdk.Info {
	return sdk.Info{Name: "rec", Version: "2.0.0", Description: "records", Config: []sdk.ConfigField{{Name: "k", Type: sdk.String}}}
}

func (r *recorder) Check(_ context.Context, req sdk.CheckRequest) (sdk.Result, error) {
	if r.panic {
		panic("boom")
	}
	r.last.Store(&req)
	if req.Config["fail"] == true {
		return sdk.Result{Passed: true, Value: 1}, errors.New("dependency down")
	}
	return sdk.Result{Passed: req.Snapshot.Gateway.Connected, Value: 12, Threshold: req.Threshold.Value, Unit: "ms", Message: "fine"}, nil
}

func TestWireHealthCheck(t *testing.T) {
	rec := &recorder{}
	p := sdktest.Start(t, sdk.Plugins{HealthChecks: []sdk.HealthCheck{rec}}, sdktest.Options{Name: "db", Config: sdk.Config{"k": "plugin", "p": 1.0}})

	d := p.Describe()
	if len(d) != 1 || d[0].Kind != sdk.KindHealthCheck || d[0].Name != "rec" || d[0].Version != "2.0.0" || len(d[0].Config) != 1 {
		t.Fatalf("Describe = %+v", d)
	}

	snap := sampleSnapshot()
	th := sdk.Threshold{Set: true, Value: 250}
	res, err := p.Check(context.Background(), "rec", sdk.CheckRequest{Snapshot: snap, Threshold: th, Config: sdk.Config{"k": "check"}})
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Result{Passed: true, Value: 12, Threshold: 250, Unit: "ms", Message: "fine"}
	if res != want {
		t.Fatalf("Check = %+v, want %+v", res, want)
	}
	got := rec.last.Load()
	if got.Snapshot != snap || got.Threshold != th {
		t.Fatalf("plugin saw snapshot %+v threshold %+v", got.Snapshot, got.Threshold)
	}
	// The check block's config is laid over the plugin block's.
	if got.Config["k"] != "check" || got.Config["p"] != 1.0 {
		t.Fatalf("plugin saw config %v", got.Config)
	}
	if got.Host == nil {
		t.Fatal("request carries no Host")
	}

	res, err = p.Check(context.Background(), "rec", sdk.CheckRequest{Config: sdk.Config{"fail": true}})
	if err == nil || err.Error() != "dependency down" || res.Passed {
		t.Fatalf("failing check = %+v, %v; want not passed with the check's error", res, err)
	}

	_, err = p.Check(context.Background(), "nope", sdk.CheckRequest{})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown check: %v", err)
	}
}

func TestWirePanicIsAnErrorAndThePluginLivesOn(t *testing.T) {
	bad := &recorder{panic: true}
	good := sdk.NewHealthCheck(sdk.Info{Name: "good"}, func(context.Context, sdk.CheckRequest) (sdk.Result, error) {
		return sdk.Result{Passed: true}, nil
	})
	p := sdktest.Start(t, sdk.Plugins{HealthChecks: []sdk.HealthCheck{bad, good}}, sdktest.Options{})
	_, err := p.Check(context.Background(), "rec", sdk.CheckRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "panic: boom") {
		t.Fatalf("panicking check: %v", err)
	}
	if res, err := p.Check(context.Background(), "good", sdk.CheckRequest{}); err != nil || !res.Passed {
		t.Fatalf("after the panic: %+v, %v", res, err)
	}
}

// callback is a recovery strategy and an action that use every Host method.
func callbackPlugins(t *testing.T) sdk.Plugins {
	strategy := sdk.NewRecoveryStrategy(sdk.Info{Name: "kick"},
		func(_ context.Context, req sdk.RecoveryRequest) (bool, error) {
			if req.Error.Fatal {
				return false, nil
			}
			if req.Error.Kind == "broken" {
				return false, errors.New("cannot judge")
			}
			return req.Error.CloseCode == 4000, nil
		},
		func(ctx context.Context, req sdk.RecoveryRequest) error {
			s, err := req.Host.Snapshot(ctx)
			if err != nil {
				return err
			}
			if err := req.Host.Log(ctx, sdk.LogWarn, "resuming", "seq", s.Gateway.Sequence, "attempt", req.Attempt); err != nil {
				return err
			}
			mode := sdk.Resume
			if m, _ := req.Config.String("mode", ""); m != "" {
				mode = sdk.RecoveryMode(m)
			}
			return req.Host.RequestRecovery(ctx, mode, "close "+req.Error.Message)
		})
	act := sdk.NewDegradationAction(sdk.Info{Name: "quiet"},
		func(ctx context.Context, req sdk.ActionRequest) error {
			return req.Host.SetFeature(ctx, "chatter-"+strings.ToLower(req.Level), false)
		},
		func(ctx context.Context, req sdk.ActionRequest) error {
			return req.Host.SetFeature(ctx, "chatter-"+strings.ToLower(req.Level), true)
		})
	return sdk.Plugins{RecoveryStrategies: []sdk.RecoveryStrategy{strategy}, DegradationActions: []sdk.DegradationAction{act}}
}

func TestWireHostCallbacks(t *testing.T) {
	host := &sdktest.Host{}
	snap := sampleSnapshot()
	host.SetSnapshot(snap)
	p := sdktest.Start(t, callbackPlugins(t), sdktest.Options{Host: host})
	ctx := context.Background()

	for _, tt := range []struct {
		e    sdk.ErrorInfo
		want bool
		err  string
	}{
		{sdk.ErrorInfo{CloseCode: 4000}, true, ""},
		{sdk.ErrorInfo{CloseCode: 4000, Fatal: true}, false, ""},
		{sdk.ErrorInfo{CloseCode: 1006}, false, ""},
		{sdk.ErrorInfo{Kind: "broken"}, false, "cannot judge"},
	} {
		ok, err := p.Applies(ctx, "kick", sdk.RecoveryRequest{Error: tt.e})
		if ok != tt.want || (tt.err == "") != (err == nil) || (err != nil && err.Error() != tt.err) {
			t.Errorf("Applies(%+v) = %v, %v; want %v, %q", tt.e, ok, err, tt.want, tt.err)
		}
	}

	if err := p.Recover(ctx, "kick", sdk.RecoveryRequest{Error: sdk.ErrorInfo{Message: "4000"}, Attempt: 2}); err != nil {
		t.Fatal(err)
	}
	if r := host.Recoveries(); len(r) != 1 || r[0] != (sdktest.Recovery{Mode: sdk.Resume, Reason: "close 4000"}) {
		t.Fatalf("recoveries = %+v", r)
	}
	logs := host.Logs()
	if len(logs) != 1 || logs[0].Level != sdk.LogWarn || logs[0].Message != "resuming" ||
		logs[0].Fields["seq"] != "77" || logs[0].Fields["attempt"] != "2" {
		t.Fatalf("logs = %+v", logs)
	}

	// The host refuses an unknown mode before the Host implementation sees it.
	err := p.Recover(ctx, "kick", sdk.RecoveryRequest{Config: sdk.Config{"mode": "reboot"}})
	if err == nil || !strings.Contains(err.Error(), `unknown recovery mode "reboot"`) {
		t.Fatalf("bad mode: %v", err)
	}
	host.RefuseRecovery(errors.New("connection is stopped"))
	err = p.Recover(ctx, "kick", sdk.RecoveryRequest{})
	if err == nil || !strings.Contains(err.Error(), "connection is stopped") {
		t.Fatalf("refused: %v", err)
	}
	if len(host.Recoveries()) != 1 {
		t.Fatalf("refused recoveries were recorded: %+v", host.Recoveries())
	}

	if err := p.Apply(ctx, "quiet", sdk.ActionRequest{Level: "SEVERE"}); err != nil {
		t.Fatal(err)
	}
	if f := host.Features(); len(f) != 1 || f["chatter-severe"] {
		t.Fatalf("after Apply: %v", f)
	}
	if err := p.Rollback(ctx, "quiet", sdk.ActionRequest{Level: "SEVERE"}); err != nil {
		t.Fatal(err)
	}
	if f := host.Features(); !f["chatter-severe"] {
		t.Fatalf("after Rollback: %v", f)
	}

	// A new plugin config keeps the host connection.
	if err := p.Configure("again", sdk.Config{"mode": "reidentify"}); err != nil {
		t.Fatal(err)
	}
	host.RefuseRecovery(nil)
	if err := p.Recover(ctx, "kick", sdk.RecoveryRequest{}); err != nil {
		t.Fatal(err)
	}
	if r := host.Recoveries(); len(r) != 2 || r[1].Mode != sdk.Reidentify {
		t.Fatalf("recoveries after reconfigure = %+v", r)
	}
}

func TestWireWithoutHost(t *testing.T) {
	p := sdktest.Start(t, callbackPlugins(t), sdktest.Options{NoHost: true})
	err := p.Recover(context.Background(), "kick", sdk.RecoveryRequest{})
	if err == nil || err.Error() != sdk.ErrNoHost.Error() {
		t.Fatalf("Recover without host: %v", err)
	}
	if p.Host() != nil {
		t.Fatal("Host() with NoHost")
	}
}

type panickyHost struct{ sdktest.Host }

func (*panickyHost) Snapshot(context.Context) (sdk.Snapshot, error) { panic("host bug") }

func TestHostServerRecoversPanics(t *testing.T) {
	srv := sdk.NewHostServer(&panickyHost{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := srv.GetSnapshot(ctx, &pb.SnapshotRequest{})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "panic: host bug") {
		t.Fatalf("GetSnapshot = %v", err)
	}
	if _, err := srv.SetFeature(ctx, &pb.SetFeatureRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("empty feature name: %v", err)
	}
	if _, err := srv.Log(ctx, &pb.LogRequest{Level: 42, Message: "x"}); err != nil {
		t.Fatalf("Log with an unknown level: %v", err)
	}
}
