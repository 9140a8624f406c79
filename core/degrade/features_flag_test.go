package degrade

import "testing"

func TestSetFlagSwitchesOneFeature(t *testing.T) {
	f := NewFeatures()
	f.Register("music", ClassOptional)
	f.Register("moderation", ClassCritical)
	f.SetFlag("moderation", false)
	if f.Enabled("moderation") || !f.Enabled("music") {
		t.Fatalf("after SetFlag(moderation, off): moderation %v, music %v", f.Enabled("moderation"), f.Enabled("music"))
	}
	f.Disable("action", ClassOptional)
	f.SetFlag("moderation", true)
	if !f.Enabled("moderation") || f.Enabled("music") {
		t.Fatalf("after clearing the flag under degradation: moderation %v, music %v", f.Enabled("moderation"), f.Enabled("music"))
	}
	f.Restore("action")
	for _, st := range f.List() {
		if !st.Enabled {
			t.Fatalf("%s still off after restore", st.Name)
		}
	}
}
