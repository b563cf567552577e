package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path and parses it with Parse,
// taking ${NAME} references from the process environment. A file that
// cannot be read gives a wrapped *os.PathError; a file that can be read but
// is wrong gives *Problems.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, os.LookupEnv)
}

// Parse decodes a YAML configuration, expands ${NAME} references in its
// values with lookupEnv (nil means no variable is set), applies defaults and
// validates the result. On failure it returns a nil *Config and a *Problems
// error holding every decoding and validation problem, each named by its
// YAML key path.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	var probs Problems
	root, err := parseDocument(data)
	if err != nil {
		probs.addf("", "%s", strings.ReplaceAll(err.Error(), "\n", " "))
		return nil, &probs
	}

	c := &Config{}
	d := &decoder{lookupEnv: lookupEnv, problems: &probs, present: map[string]bool{}}
	if root != nil {
		root = resolveAlias(root)
		if root.Kind != yaml.MappingNode && root.ShortTag() != "!!null" {
			probs.addf("", "line %d: the configuration must be a mapping of keys to values (like \"listen: 127.0.0.1:6432\"), found %s", root.Line, kindName(root))
			return nil, &probs
		}
		d.value(root, reflect.ValueOf(c).Elem(), "")
	}

	applyDefaults(c, func(path string) bool { return d.present[path] })

	if err := c.Validate(); err != nil {
		var vp *Problems
		if errors.As(err, &vp) {
			for _, pr := range vp.List {
				if !probs.has(pr.Path) {
					probs.addf(pr.Path, "%s", pr.Message)
				}
			}
		}
	}
	if err := probs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDocument returns the root value of the single YAML document in data,
// or nil when data holds no document or only an empty one.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("line %d: a second YAML document; the configuration must be a single document", max(next.Line, 1))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// decoder walks the YAML node tree alongside the Config type, guided by the
// fields' yaml tags. Unlike yaml.v3's own KnownFields decoding it does not
// stop at the first problem, and it knows each value's full key path.
type decoder struct {
	lookupEnv func(string) (string, bool)
	problems  *Problems
	// present records the key paths that were given a non-null value, so
	// that defaults can tell "0" (disabled) from "not written".
	present map[string]bool
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v. The depth of the recursion is bounded by the
// depth of the Config type, whatever the YAML holds.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // same as not written at all
	}
	d.present[path] = true

	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if n.Kind == yaml.ScalarNode {
			n = d.expanded(n, path)
			if n == nil {
				return
			}
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, msg := range te.Errors {
					d.problems.addf(path, "%s", msg)
				}
			} else {
				d.problems.addf(path, "line %d: %v", n.Line, err)
			}
		}
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.structFields(n, v, path)
	case reflect.Map:
		d.mapEntries(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n = d.scalar(n, path); n != nil {
			v.SetString(n.Value)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n = d.scalar(n, path); n == nil {
			return
		}
		i, err := strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
		switch {
		case errors.Is(err, strconv.ErrRange) || err == nil && v.OverflowInt(i):
			d.problems.addf(path, "line %d: number out of range", n.Line)
		case err != nil:
			d.problems.addf(path, "line %d: expected a whole number", n.Line)
		default:
			v.SetInt(i)
		}
	case reflect.Bool:
		if n = d.scalar(n, path); n == nil {
			return
		}
		b, ok := parseBool(n.Value)
		if !ok {
			d.problems.addf(path, "line %d: expected true or false", n.Line)
			return
		}
		v.SetBool(b)
	default:
		// Not used by Config today; a field of a new kind would land here
		// until the walker learns it.
		if n = d.scalar(n, path); n == nil {
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.problems.addf(path, "line %d: invalid value", n.Line)
		}
	}
}

// parseBool reads a boolean: true or false, or YAML 1.1's yes/no and on/off,
// in lower, title or upper case. It reads the value after environment
// expansion, so "${FLAG}" works too (yaml.v3's own decoding would refuse the
// expanded string).
func parseBool(s string) (value, ok bool) {
	switch strings.TrimSpace(s) {
	case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

// scalar returns n with environment references expanded, or nil (after
// recording a problem) when n is not a single value or cannot be expanded.
func (d *decoder) scalar(n *yaml.Node, path string) *yaml.Node {
	if n.Kind != yaml.ScalarNode {
		d.problems.addf(path, "line %d: expected a single value, found %s", n.Line, kindName(n))
		return nil
	}
	return d.expanded(n, path)
}

// expanded returns a copy of the scalar n with ${NAME} references replaced.
// It copies because an anchored node can be used in more than one place.
func (d *decoder) expanded(n *yaml.Node, path string) *yaml.Node {
	v, problems := expandEnv(n.Value, d.lookupEnv)
	for _, p := range problems {
		d.problems.addf(path, "%s", p)
	}
	if len(problems) > 0 {
		return nil
	}
	c := *n
	c.Value = v
	return &c
}

func (d *decoder) structFields(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
		index[name] = i
	}
	for _, kv := range d.pairs(n, path) {
		i, ok := index[kv.name]
		if !ok {
			msg := "unknown key"
			if s := suggest(kv.name, names); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			d.problems.addf(joinPath(path, kv.name), "%s", msg)
			continue
		}
		d.value(kv.val, v.Field(i), joinPath(path, kv.name))
	}
}

// sequence decodes a YAML list; a single value is taken as a list of one.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	items := []*yaml.Node{n}
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	case yaml.ScalarNode:
	default:
		d.problems.addf(path, "line %d: expected a list, found %s", n.Line, kindName(n))
		return
	}
	if len(items) == 0 {
		return // an empty list is the same as none
	}
	s := reflect.MakeSlice(v.Type(), len(items), len(items))
	for i, item := range items {
		d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) mapEntries(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.problems.addf(path, "line %d: cannot decode into %s", n.Line, t)
		return
	}
	pairs := d.pairs(n, path)
	if pairs == nil {
		return // not a mapping; d.pairs has said so
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, kv := range pairs {
		elem := reflect.New(t.Elem()).Elem()
		target := elem
		if t.Elem().Kind() == reflect.Pointer {
			// Allocate even for an empty entry ("appdb:") so that it
			// exists and validation can say what it lacks.
			elem.Set(reflect.New(t.Elem().Elem()))
			target = elem.Elem()
		}
		d.value(kv.val, target, joinPath(path, kv.name))
		v.SetMapIndex(reflect.ValueOf(kv.name).Convert(t.Key()), elem)
	}
}

type keyValue struct {
	name string
	val  *yaml.Node
}

// pairs lists the entries of mapping n in order, with "<<" merge keys
// resolved the YAML way: keys written in the mapping win over merged ones,
// and earlier merged mappings win over later ones. Duplicate keys are
// problems. It returns nil, after recording a problem, if n is not a mapping.
func (d *decoder) pairs(n *yaml.Node, path string) []keyValue {
	if n.Kind != yaml.MappingNode {
		d.problems.addf(path, "line %d: expected a mapping of keys to values, found %s", n.Line, kindName(n))
		return nil
	}
	var out []keyValue
	seen := map[string]bool{}
	visited := map[*yaml.Node]bool{}
	var walk func(m *yaml.Node)
	walk = func(m *yaml.Node) {
		if visited[m] {
			return
		}
		visited[m] = true
		firstLine := map[string]int{}
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, val := resolveAlias(m.Content[i]), m.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.problems.addf(path, "line %d: a key must be a plain name, found %s", k.Line, kindName(k))
				continue
			}
			if k.Value == "<<" && k.ShortTag() == "!!merge" {
				merges = append(merges, val)
				continue
			}
			name := k.Value
			if k.ShortTag() == "!!null" {
				name = ""
			}
			if line, dup := firstLine[name]; dup {
				d.problems.addf(joinPath(path, name), "line %d: duplicate key (first written on line %d)", k.Line, line)
				continue
			}
			firstLine[name] = k.Line
			if seen[name] {
				continue // written explicitly or merged from an earlier source
			}
			seen[name] = true
			out = append(out, keyValue{name: name, val: val})
		}
		for _, mv := range merges {
			mv = resolveAlias(mv)
			switch mv.Kind {
			case yaml.MappingNode:
				walk(mv)
			case yaml.SequenceNode:
				for _, item := range mv.Content {
					item = resolveAlias(item)
					if item.Kind != yaml.MappingNode {
						d.problems.addf(path, "line %d: \"<<\" can only merge mappings, found %s", item.Line, kindName(item))
						continue
					}
					walk(item)
				}
			default:
				d.problems.addf(path, "line %d: \"<<\" can only merge a mapping or a list of mappings, found %s", mv.Line, kindName(mv))
			}
		}
	}
	walk(n)
	if out == nil {
		out = []keyValue{}
	}
	return out
}

// resolveAlias follows *alias references to the anchored node.
func resolveAlias(n *yaml.Node) *yaml.Node {
	// The parser rejects aliases to unknown anchors, and an alias cannot
	// carry an anchor of its own, so chains are short; the bound is only a
	// guard.
	for range 16 {
		if n.Kind != yaml.AliasNode || n.Alias == nil {
			break
		}
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

// suggest returns the known key closest to an unknown one, if it is within
// two edits (ignoring case), so that typos get a hint.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	lk := strings.ToLower(key)
	if len(lk) > 64 {
		return "" // no key is that long; spare the quadratic work
	}
	for _, k := range known {
		if dist := editDistance(lk, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
