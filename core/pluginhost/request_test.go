package pluginhost

import (
	"reflect"
	"testing"

	"github.com/lifeline-bot/lifeline/core/metrics"
	"github.com/lifeline-bot/lifeline/core/policy"
	"github.com/lifeline-bot/lifeline/sdk"
)

// Every field of the failure a policy condition sees reaches a plugin's
// strategy (through the wire and the sdk), so a plugin can decide on what
// a built-in strategy decides on, op 9's d included. A field added to
// policy.ErrorInfo without its wire counterpart fails here.
func TestRecoveryRequestCarriesEveryErrorField(t *testing.T) {
	e := policy.ErrorInfo{Message: "invalid session", CloseCode: 4000, Kind: "invalid_session", Source: "conn", Fatal: true, Resumable: true}
	s := &Strategy{plugin: "p", strategy: "kick"}
	req := s.request(e, &metrics.Snapshot{}, 1)
	got := sdk.ErrorInfoFromProto(req.GetError())
	want := reflect.ValueOf(e)
	for i := range want.NumField() {
		name := want.Type().Field(i).Name
		f := reflect.ValueOf(got).FieldByName(name)
		if !f.IsValid() {
			t.Errorf("sdk.ErrorInfo has no field %s", name)
			continue
		}
		if w := want.Field(i); f.Kind() != w.Kind() && !(f.CanInt() && w.CanInt()) || f.Interface() != w.Convert(f.Type()).Interface() {
			t.Errorf("%s: the plugin sees %v, want %v", name, f.Interface(), w.Interface())
		}
	}
}
