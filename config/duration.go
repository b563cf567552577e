package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// UnmarshalYAML accepts a Go duration string ("5s", "250ms", "1h30m") or 0.
// A bare non-zero number is refused rather than guessed at: "30" could mean
// seconds or milliseconds. Negative durations are refused. An empty value
// (null) leaves d unchanged. Errors never repeat the value, which may have
// come from the environment.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	fail := func(msg string) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, msg)}}
	}
	if n.Kind != yaml.ScalarNode {
		return fail(`expected a duration such as "30s"`)
	}
	if n.ShortTag() == "!!null" {
		return nil
	}
	v := strings.TrimSpace(n.Value)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f != 0 {
			return fail(`a duration needs a unit, such as "30s", "250ms" or "1h"`)
		}
		*d = 0
		return nil
	}
	td, err := time.ParseDuration(v)
	if err != nil {
		return fail(`invalid duration: write a number with a unit, such as "30s", "250ms" or "1h30m"`)
	}
	if td < 0 {
		return fail("a duration must not be negative")
	}
	*d = Duration(td)
	return nil
}

// MarshalYAML writes d in the form UnmarshalYAML reads ("1m30s", "0s").
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }
