package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// tree is what walking a YAML node tree against the Go types learns: the line of every field,
// and the problems the decoder would either miss (unknown keys) or report without a field path
// (wrong types, duplicate keys).
type tree struct {
	file  string
	lines map[string]int // field path -> line of its key, or of its list item
	probs Problems
	// bad holds the paths whose values could not be decoded; validating them would only repeat
	// the problem in other words.
	bad []string
	// reported holds the lines the walk already has a problem on, so the decoder's own report of
	// the same mistake is dropped.
	reported map[int]bool
	// walked holds the anchored nodes already walked as a type: an alias is walked once, so a
	// file of nested aliases cannot make the walk exponential.
	walked map[walkKey]bool
	// steps bounds the walk: merge keys can still repeat work, and the decoder refuses such
	// files anyway ("excessive aliasing").
	steps int
}

const maxSteps = 100_000

type walkKey struct {
	n *yaml.Node
	t reflect.Type
}

func newTree(file string) *tree {
	return &tree{file: file, lines: map[string]int{}, reported: map[int]bool{}, walked: map[walkKey]bool{}}
}

func (w *tree) add(line int, field, format string, args ...any) {
	w.probs = append(w.probs, Problem{File: w.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
}

// walk checks node n against type t at path.
func (w *tree) walk(n *yaml.Node, t reflect.Type, path string) {
	if w.steps++; w.steps > maxSteps {
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		k := walkKey{n.Alias, t}
		if w.walked[k] {
			return
		}
		w.walked[k] = true
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value is the zero value, which the defaults and validation handle
	}
	switch t.Kind() {
	case reflect.Struct:
		if w.expect(n, yaml.MappingNode, t, path) {
			w.mapping(n, path, func(key *yaml.Node) (reflect.Type, bool) {
				f, ok := yamlFields(t)[key.Value]
				if !ok {
					msg := fmt.Sprintf("unknown field %q", key.Value)
					if s := closest(key.Value, t); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					w.add(key.Line, path, "%s", msg)
				}
				return f.Type, ok
			})
		}
	case reflect.Map:
		if w.expect(n, yaml.MappingNode, t, path) {
			w.mapping(n, path, func(*yaml.Node) (reflect.Type, bool) { return t.Elem(), true })
		}
	case reflect.Slice:
		if w.expect(n, yaml.SequenceNode, t, path) {
			for i, item := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				w.lines[p] = item.Line
				w.walk(item, t.Elem(), p)
			}
		}
	default:
		if w.expect(n, yaml.ScalarNode, t, path) {
			// Decoding the one scalar alone is the only exact answer to "will the decoder take
			// this?": yaml.v3 has its own rules (a duration from "10m", an integer from 0x10).
			if err := n.Decode(reflect.New(t).Interface()); err != nil {
				w.wrongType(n, t, path)
			}
		}
	}
}

// expect reports a problem and returns false unless n is of kind k.
func (w *tree) expect(n *yaml.Node, k yaml.Kind, t reflect.Type, path string) bool {
	if n.Kind == k {
		return true
	}
	w.wrongType(n, t, path)
	return false
}

func (w *tree) wrongType(n *yaml.Node, t reflect.Type, path string) {
	w.add(n.Line, path, "want %s, got %s", describeType(t), describeNode(n))
	w.bad = append(w.bad, path)
	w.reported[n.Line] = true
}

// mapping walks the key/value pairs of n, asking field for each key's type (false: skip it).
// It follows merge keys (<<: *defaults) and reports keys given twice.
func (w *tree) mapping(n *yaml.Node, path string, field func(key *yaml.Node) (reflect.Type, bool)) {
	if w.steps++; w.steps > maxSteps {
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			w.merge(v, n, path, field)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.add(k.Line, path, "want a name as key, got %s", describeNode(k))
			w.reported[k.Line] = true
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.add(k.Line, join(path, k.Value), "given twice (first on line %d)", first)
			w.reported[k.Line] = true
			continue
		}
		seen[k.Value] = k.Line
		t, ok := field(k)
		if !ok {
			continue
		}
		p := join(path, k.Value)
		w.lines[p] = k.Line
		w.walk(v, t, p)
	}
}

// merge walks the mapping (or list of mappings) a merge key brings in as part of parent.
func (w *tree) merge(v, parent *yaml.Node, path string, field func(*yaml.Node) (reflect.Type, bool)) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch {
	case v.Kind == yaml.MappingNode && v != parent:
		w.mapping(v, path, field)
	case v.Kind == yaml.SequenceNode:
		for _, item := range v.Content {
			if item.Kind == yaml.AliasNode && item.Alias != nil && item.Alias.Kind == yaml.MappingNode && item.Alias != parent {
				w.mapping(item.Alias, path, field)
			}
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describeType(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 90s or 10m"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	}
	return "a mapping"
}

func describeNode(n *yaml.Node) string {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	return fmt.Sprintf("%q", v)
}

// yamlFields maps the yaml keys of struct t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out[name] = f
	}
	return out
}

// closest suggests the key of t nearest to a misspelt one: at most two edits away, and fewer
// edits than the key is long, so that "x" does not suggest "pr".
func closest(key string, t reflect.Type) string {
	best, bestD := "", 3
	for name := range yamlFields(t) {
		d := distance(strings.ToLower(key), name)
		if d >= len(key) {
			continue
		}
		if d < bestD || (d == bestD && name < best) {
			best, bestD = name, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
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
