package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Config is a plugin's configuration from the policy: JSON-shaped values
// (string, float64, bool, []any, map[string]any or nil) by key. The getters
// return a default for an absent key and an error naming the key for a value
// of the wrong type.
type Config map[string]any

// ErrConfig is returned (wrapped) by the Config getters and by
// ValidateConfig when a value is missing, of the wrong type or not allowed.
var ErrConfig = errors.New("invalid plugin configuration")

// Has reports whether key is set.
func (c Config) Has(key string) bool {
	_, ok := c[key]
	return ok
}

// String returns the string at key, or def when key is absent.
func (c Config) String(key, def string) (string, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return def, typeErr(key, "a string", v)
	}
	return s, nil
}

// Number returns the number at key, or def when key is absent.
func (c Config) Number(key string, def float64) (float64, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return def, nil
	}
	switch n := v.(type) {
	case float64:
		return n, nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return def, typeErr(key, "a number", v)
		}
		return f, nil
	}
	return def, typeErr(key, "a number", v)
}

// Bool returns the bool at key, or def when key is absent.
func (c Config) Bool(key string, def bool) (bool, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return def, typeErr(key, "true or false", v)
	}
	return b, nil
}

// Duration returns the duration at key, written as a string such as "1.5s",
// or def when key is absent. A number is taken as seconds.
func (c Config) Duration(key string, def time.Duration) (time.Duration, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return def, nil
	}
	switch d := v.(type) {
	case string:
		p, err := time.ParseDuration(d)
		if err != nil {
			return def, fmt.Errorf("config %q: %w: %q is not a duration such as \"1.5s\"", key, ErrConfig, d)
		}
		return p, nil
	case float64:
		return time.Duration(d * float64(time.Second)), nil
	}
	return def, typeErr(key, "a duration such as \"1.5s\"", v)
}

// Strings returns the list of strings at key, or def when key is absent.
func (c Config) Strings(key string, def []string) ([]string, error) {
	v, ok := c[key]
	if !ok || v == nil {
		return def, nil
	}
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...), nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := e.(string)
			if !ok {
				return def, typeErr(fmt.Sprintf("%s[%d]", key, i), "a string", e)
			}
			out[i] = s
		}
		return out, nil
	}
	return def, typeErr(key, "a list of strings", v)
}

// Decode fills the struct pointed to by v from c through encoding/json, so
// v's fields take `json:"key"` tags.
func (c Config) Decode(v any) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("config: %w: %v", ErrConfig, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("config: %w: %v", ErrConfig, err)
	}
	return nil
}

// Merge returns a new Config with the keys of c and then over, so a key in
// both takes over's value. Neither input is modified.
func (c Config) Merge(over Config) Config {
	out := make(Config, len(c)+len(over))
	for k, v := range c {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func typeErr(key, want string, got any) error {
	return fmt.Errorf("config %q: %w: want %s, got %s", key, ErrConfig, want, describe(got))
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case float64, int, int64:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// ValidateConfig checks c against a schema: every required field is present,
// every present field has its declared type, and every key is declared.
// It returns nil or one error (wrapping ErrConfig) listing every problem.
func ValidateConfig(fields []ConfigField, c Config) error {
	declared := make(map[string]ConfigField, len(fields))
	for _, f := range fields {
		declared[f.Name] = f
	}
	var problems []string
	for _, f := range fields {
		if f.Required && !c.Has(f.Name) {
			problems = append(problems, fmt.Sprintf("%q is required (%s)", f.Name, f.Type))
		}
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, ok := declared[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%q is not a setting of this plugin%s", k, known(fields)))
			continue
		}
		if err := checkType(f, c[k]); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(problems, "; "))
}

func known(fields []ConfigField) string {
	if len(fields) == 0 {
		return " (it takes no configuration)"
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	sort.Strings(names)
	return " (known: " + strings.Join(names, ", ") + ")"
}

func checkType(f ConfigField, v any) error {
	if v == nil {
		return nil
	}
	ok := true
	switch f.Type {
	case Any:
	case String:
		_, ok = v.(string)
	case Number:
		switch v.(type) {
		case float64, int, int64, json.Number:
		default:
			ok = false
		}
	case Bool:
		_, ok = v.(bool)
	case Duration:
		switch d := v.(type) {
		case string:
			if _, err := time.ParseDuration(d); err != nil {
				return fmt.Errorf("%q: %q is not a duration such as \"1.5s\"", f.Name, d)
			}
		case float64:
		default:
			ok = false
		}
	case List:
		switch v.(type) {
		case []any, []string:
		default:
			ok = false
		}
	case Object:
		_, ok = v.(map[string]any)
	}
	if !ok {
		return fmt.Errorf("%q: want %s, got %s", f.Name, f.Type, describe(v))
	}
	return nil
}
