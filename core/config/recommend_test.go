package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRecommend(t *testing.T) {
	tests := []struct {
		env         Environment
		guilds      int
		preset      string
		shards      int // 0 = auto or the preset's
		maxAttempts int
		reasons     []string // substrings of the reasons
	}{
		{Development, 0, "small", 1, 3, []string{"Fail fast"}},
		{Development, 50, "small", 1, 3, []string{"A development bot runs one shard"}},
		{Staging, 99, "small", 1, 20, []string{"Staging mirrors production"}},
		{Production, 100, "medium", 0, 0, []string{"between 100 and 1,000", "verified"}},
		{Production, 1000, "medium", 0, 0, nil},
		{Production, 1001, "large", 0, 0, []string{"more than 1,000"}},
		{Production, 2499, "large", 0, 0, nil},
		{Production, 2500, "large", 3, 0, []string{"ceil(2,500 / 1,000) = 3"}},
		{Production, 12000, "large", 12, 0, []string{"ceil(12,000 / 1,000) = 12", "room to grow to 30,000 guilds", "12 of the 1,000 daily IDENTIFYs", "takes about 1m"}},
		{Staging, 12000, "large", 12, 20, nil},
		{Development, 12000, "large", 12, 3, nil},
		{Production, 150000, "large", 150, 0, nil},
		{Production, 150001, "large", 160, 0, []string{"large bot sharding", "multiple of max_concurrency", "so 160"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.env, tt.guilds), func(t *testing.T) {
			r, err := Recommend(tt.env, tt.guilds)
			if err != nil {
				t.Fatal(err)
			}
			p := r.Config.Policy
			if r.Preset != tt.preset || r.Shards != tt.shards || p.Connection.MaxReconnectAttempts != tt.maxAttempts {
				t.Errorf("preset %s shards %d attempts %d; want %s %d %d", r.Preset, r.Shards, p.Connection.MaxReconnectAttempts, tt.preset, tt.shards, tt.maxAttempts)
			}
			if tt.shards > 0 && p.Connection.Shards != tt.shards {
				t.Errorf("policy shards %d", p.Connection.Shards)
			}
			text := string(r.Policy)
			for _, w := range tt.reasons {
				if !strings.Contains(strings.Join(strings.Fields(strings.ReplaceAll(text, "#", " ")), " "), w) {
					t.Errorf("reasons lack %q:\n%s", w, text)
				}
			}
			for i, rs := range r.Reasons {
				if rs.Setting != "" && !strings.Contains(text, fmt.Sprintf("# recommended (%d)", i+1)) {
					t.Errorf("value of %s not marked", rs.Setting)
				}
			}
			// The printed policy is the recommended configuration.
			back := mustLoad(t, WithEnv(nil), WithPolicySource("recommended.hcl", r.Policy))
			if structure(t, back.Policy) != structure(t, p) {
				t.Error("the recommended policy text does not load to the recommended configuration")
			}
		})
	}
	if r, _ := Recommend(Development, 50); r.Config.Policy.Health.Interval != 10*time.Second || r.Config.Policy.Health.Timeout >= r.Config.Policy.Health.Interval {
		t.Error("development health timing")
	}
}

func TestRecommendGolden(t *testing.T) {
	for _, c := range []struct {
		env    Environment
		guilds int
	}{{Production, 12000}, {Development, 50}, {Staging, 500}} {
		r, err := Recommend(c.env, c.guilds)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, fmt.Sprintf("recommend/%s-%d.hcl", c.env, c.guilds), r.Policy)
	}
}

func TestRecommendErrors(t *testing.T) {
	if _, err := Recommend(Production, -1); !errors.Is(err, ErrGuilds) {
		t.Errorf("negative guilds: %v", err)
	}
	if _, err := Recommend(Production, 70_000_000); !errors.Is(err, ErrGuilds) || !strings.Contains(err.Error(), "65535") {
		t.Errorf("too many guilds: %v", err)
	}
	if _, err := Recommend("prod", 10); !errors.Is(err, ErrUnknownEnvironment) {
		t.Errorf("unnormalised environment: %v", err)
	}
	for in, want := range map[string]Environment{"dev": Development, "Development": Development, "STAGE": Staging, "prod": Production, "production": Production} {
		if got, err := ParseEnvironment(in); err != nil || got != want {
			t.Errorf("ParseEnvironment(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseEnvironment("qa"); !errors.Is(err, ErrUnknownEnvironment) {
		t.Errorf("qa: %v", err)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 12000: "12,000", 1234567: "1,234,567", -2500: "-2,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q", n, got)
		}
	}
}
