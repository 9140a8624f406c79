package main

import (
	"context"
	"testing"

	"github.com/lifeline-bot/lifeline/sdk"
	"github.com/lifeline-bot/lifeline/sdk/sdktest"
)

func TestFeatureFlagsAsASubprocess(t *testing.T) {
	// Build and Exec run the binary as lifeline does: a subprocess over
	// go-plugin with mutual TLS.
	bin := sdktest.Build(t, ".")
	p := sdktest.Exec(t, bin, sdktest.Options{Config: sdk.Config{"features": []any{"leaderboard", "trivia"}}})
	ctx := context.Background()

	if err := p.Apply(ctx, "shed", sdk.ActionRequest{Level: "MODERATE"}); err != nil {
		t.Fatal(err)
	}
	if f := p.Host().Features(); f["leaderboard"] || f["trivia"] || len(f) != 2 {
		t.Fatalf("after Apply: %v", f)
	}
	if err := p.Rollback(ctx, "shed", sdk.ActionRequest{Level: "MODERATE"}); err != nil {
		t.Fatal(err)
	}
	if f := p.Host().Features(); !f["leaderboard"] || !f["trivia"] {
		t.Fatalf("after Rollback: %v", f)
	}

	req := sdk.RecoveryRequest{Error: sdk.ErrorInfo{Kind: "invalid_session"}, Snapshot: sdk.Snapshot{Errors: sdk.Errors{Consecutive: 2}}}
	if ok, err := p.Applies(ctx, "reidentify", req); !ok || err != nil {
		t.Fatalf("Applies = %v, %v", ok, err)
	}
	if err := p.Recover(ctx, "reidentify", req); err != nil {
		t.Fatal(err)
	}
	if r := p.Host().Recoveries(); len(r) != 1 || r[0].Mode != sdk.Reidentify {
		t.Fatalf("recoveries = %+v", r)
	}
}
