package degrade_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lifeline-bot/lifeline/core/clock"
	"github.com/lifeline-bot/lifeline/core/degrade"
	"github.com/lifeline-bot/lifeline/core/events"
)

// printer is an events.Publisher that prints degradation events.
type printer struct{}

func (printer) Publish(e events.Event) {
	if d, ok := e.Data.(events.Degradation); ok {
		fmt.Printf("  %s %s\n", e.Type, d.Summary())
	}
}

// The engine climbs at once and comes down one level per recovery delay.
func ExampleEngine() {
	clk := clock.NewFake(time.Time{})
	say := func(name string) degrade.Action {
		return degrade.NewAction(name, nil, nil)
	}
	eng, err := degrade.New(degrade.Settings{
		Clock:  clk,
		Events: printer{},
		Actions: []degrade.Action{
			say("disable_analytics"), say("increase_timeouts"), say("enable_read_only_mode"),
		},
	})
	if err != nil {
		panic(err)
	}
	plan := degrade.Plan{
		{Level: degrade.Minimal, Actions: []string{"disable_analytics"}},
		{Level: degrade.Moderate, Actions: []string{"increase_timeouts"}},
		{Level: degrade.Critical, Actions: []string{"enable_read_only_mode"}},
	}
	ctx := context.Background()
	start := clk.Now()
	tick := func(level degrade.Level, recover bool) {
		res := eng.Apply(ctx, degrade.Target{Level: level, Plan: plan, Recover: recover,
			Reason: "outage", RecoveryDelay: 30 * time.Second})
		if res.From != res.Level {
			fmt.Printf("t=%s: %s -> %s\n", clk.Since(start), res.From, res.Level)
		}
	}
	fmt.Println("outage:")
	tick(degrade.Critical, false)
	fmt.Println("recovered, one level per 30s:")
	for range 100 { // one tick a second
		tick(degrade.None, true)
		clk.Advance(time.Second)
	}
	fmt.Println("level:", eng.Level())
	// Output:
	// outage:
	//   DEGRADATION_ACTIVATED NONE -> CRITICAL [disable_analytics increase_timeouts enable_read_only_mode] (outage)
	// t=0s: NONE -> CRITICAL
	// recovered, one level per 30s:
	//   DEGRADATION_DEACTIVATED CRITICAL -> MODERATE [enable_read_only_mode] (recover condition held for 30s (policy wants NONE))
	// t=30s: CRITICAL -> MODERATE
	//   DEGRADATION_DEACTIVATED MODERATE -> MINIMAL [increase_timeouts] (recover condition held for 30s (policy wants NONE))
	// t=1m0s: MODERATE -> MINIMAL
	//   DEGRADATION_DEACTIVATED MINIMAL -> NONE [disable_analytics] (recover condition held for 30s (policy wants NONE))
	// t=1m30s: MINIMAL -> NONE
	// level: NONE
}

// A bot declares its features and background services once, then asks
// before doing optional work.
func ExampleKit() {
	ctx := context.Background()
	kit := degrade.NewKit(degrade.KitSettings{})
	kit.Features.Register("moderation", degrade.ClassCritical)
	kit.Features.Register("music", degrade.ClassOptional)
	kit.Features.Register("usage-stats", degrade.ClassAnalytics)

	reporter := degrade.Background(func(ctx context.Context) {
		<-ctx.Done() // a real one would report every few minutes until then
	})
	_ = kit.Services.Register(ctx, "stats-reporter", reporter, false)
	_ = kit.Services.Start(ctx)

	eng, _ := degrade.New(degrade.Settings{Actions: kit.Actions()})
	plan := degrade.Plan{{Level: degrade.Critical, Actions: []string{
		degrade.ActionDisableNonCriticalFeatures, degrade.ActionShutdownNonEssentialServices,
	}}}
	eng.Apply(ctx, degrade.Target{Level: degrade.Critical, Plan: plan})

	for _, f := range []string{"moderation", "music", "usage-stats"} {
		fmt.Printf("%s enabled: %v\n", f, kit.Features.Enabled(f))
	}
	fmt.Println("stats-reporter running:", kit.Services.Running("stats-reporter"))

	eng.Apply(ctx, degrade.Target{Level: degrade.None, Recover: true, Plan: plan})
	fmt.Println("after recovery, music enabled:", kit.Features.Enabled("music"))
	fmt.Println("stats-reporter running:", kit.Services.Running("stats-reporter"))
	_ = kit.Services.Stop(ctx)
	// Output:
	// moderation enabled: true
	// music enabled: false
	// usage-stats enabled: false
	// stats-reporter running: false
	// after recovery, music enabled: true
	// stats-reporter running: true
}

// In read-only mode, writes fail with ErrReadOnly unless marked essential.
// With discordgo: s.ChannelMessageSend(id, "…",
// discordgo.WithContext(degrade.Essential(ctx))).
func ExampleEssential() {
	ok := roundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
	})
	tr := degrade.NewTransport(degrade.TransportSettings{Next: ok})
	client := &http.Client{Transport: tr}
	tr.SetReadOnly(true) // what enable_read_only_mode does

	send := func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://discord.com/api/v10/channels/1/messages", strings.NewReader(`{"content":"hi"}`))
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	ctx := context.Background()
	err := send(ctx)
	fmt.Println("ordinary write refused:", errors.Is(err, degrade.ErrReadOnly))
	fmt.Println("essential write:", send(degrade.Essential(ctx)))
	// Output:
	// ordinary write refused: true
	// essential write: <nil>
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An operator holds a level by hand; the policy is ignored until release.
func ExampleEngine_Activate() {
	ctx := context.Background()
	kit := degrade.NewKit(degrade.KitSettings{})
	eng, _ := degrade.New(degrade.Settings{Actions: kit.Actions()})

	res, _ := eng.Activate(ctx, degrade.Severe, []string{degrade.ActionEnableReadOnlyMode}, "Discord incident #123")
	fmt.Println("level:", res.Level, "read-only:", kit.Transport.ReadOnly())

	// The policy thinks all is well; the hold wins.
	res = eng.Apply(ctx, degrade.Target{Level: degrade.None, Recover: true})
	fmt.Println("held:", res.Held, "level:", res.Level)

	res, _ = eng.Deactivate(ctx, "incident over")
	fmt.Println("level:", res.Level, "read-only:", kit.Transport.ReadOnly())
	// Output:
	// level: SEVERE read-only: true
	// held: true level: SEVERE
	// level: NONE read-only: false
}
