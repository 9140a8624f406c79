package sdk

import (
	"encoding/json"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestConfigCache(t *testing.T) {
	tests := []struct {
		name     string
		raw      []string // decoded in order, each twice
		wantErr  bool
		wantSize int // entries cached at the end
	}{
		{"nothing to decode", []string{""}, false, 0},
		{"one config", []string{`{"k":"v","n":2}`}, false, 1},
		{"not JSON: an error, never cached", []string{`{"k":`}, true, 0},
		{"more configs than the cache holds", manyConfigs(maxCachedConfigs + 5), false, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := configCache{m: map[string]Config{}}
			for _, raw := range tt.raw {
				var want Config
				if raw != "" && !tt.wantErr {
					if err := json.Unmarshal([]byte(raw), &want); err != nil {
						t.Fatal(err)
					}
				}
				for range 2 {
					got, err := c.decode([]byte(raw))
					if tt.wantErr {
						if status.Code(err) != codes.InvalidArgument {
							t.Fatalf("decode(%s): err = %v, want InvalidArgument", raw, err)
						}
						continue
					}
					if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || got == nil {
						t.Fatalf("decode(%s) = %v, %v; want %v", raw, got, err, want)
					}
				}
			}
			if len(c.m) != tt.wantSize {
				t.Fatalf("%d configs cached, want %d", len(c.m), tt.wantSize)
			}
		})
	}
}

func manyConfigs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"i":%d}`, i)
	}
	return out
}
