package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	File    string
	Line    int
	Field   string
	Message string
}

// String formats the problem as `file:line: field: message`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Message)
	return b.String()
}

// Problems is every problem found at once; it is the error Parse, Load and Validate return.
type Problems []Problem

// Error lists the problems one per line, in line order.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Line < sorted[j].Line })
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Parse reads a configuration from YAML, applies the defaults and validates it. file names the
// source in problems.
func Parse(file string, data []byte) (*Config, error) {
	return load(file, data, nil)
}

// load parses, applies the environment (when getenv is not nil) and validates, reporting
// unknown keys together with every validation problem.
func load(file string, data []byte, getenv func(string) string) (*Config, error) {
	c, probs := parse(file, data)
	if c == nil {
		return nil, probs // syntax or type errors: the values cannot be trusted to validate
	}
	if getenv != nil {
		if err := c.ApplyEnv(getenv); err != nil {
			var ps Problems
			if !errors.As(err, &ps) {
				return nil, err
			}
			probs = append(probs, ps...)
		}
	}
	if err := c.Validate(); err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			return nil, err
		}
		probs = append(probs, ps...)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

// Load reads the file at path, applies the environment's overrides and validates the result.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return load(path, data, getenv)
}

// Check loads the file at path and prints `ok` or every problem, one per line, to w. It returns
// non-nil when there are problems.
func Check(path string, getenv func(string) string, w io.Writer) error {
	_, err := Load(path, getenv)
	if err != nil {
		var ps Problems
		if errors.As(err, &ps) {
			fmt.Fprintln(w, ps.Error())
		} else {
			fmt.Fprintf(w, "%s: %v\n", path, err)
		}
		return err
	}
	fmt.Fprintln(w, "ok")
	return nil
}

// yamlLine finds the line yaml.v3 puts in its messages ("yaml: line 3: ...", "line 3: ...").
var yamlLine = regexp.MustCompile(`line (\d+): `)

func problemFromYAML(file, msg string) Problem {
	msg = strings.TrimPrefix(msg, "yaml: ")
	p := Problem{File: file, Message: msg}
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		p.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		p.Message = msg[:m[0]] + msg[m[1]:]
	}
	return p
}

// parse decodes data. It returns a nil Config when the values cannot be trusted (syntax or type
// errors), and otherwise the Config with any unknown-key problems.
func parse(file string, data []byte) (*Config, Problems) {
	c := &Config{File: file, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{problemFromYAML(file, err.Error())}
	}
	if len(doc.Content) == 0 { // an empty file is the defaults
		c.applyDefaults()
		return c, nil
	}
	root := doc.Content[0]
	var probs Problems
	walk(file, root, reflect.TypeOf(Config{}), "", c.lines, &probs)
	if err := root.Decode(c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				probs = append(probs, c.typeProblem(problemFromYAML(file, m)))
			}
		} else {
			probs = append(probs, problemFromYAML(file, err.Error()))
		}
		return nil, probs
	}
	c.File = file
	c.applyDefaults()
	return c, probs
}

// typeProblem names the field of a decoding problem from its line, and says it plainly.
func (c *Config) typeProblem(p Problem) Problem {
	for path, l := range c.lines {
		if l == p.Line && (p.Field == "" || len(path) > len(p.Field)) && !strings.HasSuffix(path, "]") {
			p.Field = path
		}
	}
	if m := yamlType.FindStringSubmatch(p.Message); m != nil {
		got := m[2]
		if got == "" {
			got = yamlTagWords[m[1]]
		}
		want := goTypeWords[m[3]]
		if want == "" {
			want = m[3]
		}
		p.Message = fmt.Sprintf("want %s, got %s", want, got)
	}
	return p
}

var yamlType = regexp.MustCompile(`^cannot unmarshal !!(\w+) ?(.*?) ?into ([\w.\[\]]+)$`)

var yamlTagWords = map[string]string{"seq": "a list", "map": "a mapping"}

var goTypeWords = map[string]string{
	"int64": "an integer", "int": "an integer", "bool": "true or false", "string": "a string",
	"[]string": "a list of strings", "config.Trigger": "merge, push or nothing",
	"config.Stage": "a stage (a mapping)", "config.App": "an app (a mapping)", "config.Config": "a mapping of settings",
	"[]config.Stage": "a list of stages", "[]config.App": "a list of apps", "[]config.Deployment": "a list of Deployments",
}

// walk records the line of every key under path and reports keys t has no field for.
func walk(file string, n *yaml.Node, t reflect.Type, path string, lines map[string]int, probs *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		known := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			f, ok := known[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q", k.Value)
				if s := closest(k.Value, t); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*probs = append(*probs, Problem{File: file, Line: k.Line, Field: strings.TrimPrefix(path, "."), Message: msg})
				continue
			}
			lines[p] = k.Line
			walk(file, v, f.Type, p, lines, probs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[p] = item.Line
			walk(file, item, t.Elem(), p, lines, probs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			lines[p] = n.Content[i].Line
			walk(file, n.Content[i+1], t.Elem(), p, lines, probs)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

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

// closest suggests the known key nearest to a misspelt one (edit distance at most 2).
func closest(key string, t reflect.Type) string {
	best, bestD := "", 3
	for name := range yamlFields(t) {
		if d := distance(key, name); d < bestD || (d == bestD && name < best) {
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

// line returns the line of path, or of its nearest ancestor that has one.
func (c *Config) line(path string) int {
	for path != "" {
		if l, ok := c.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}
