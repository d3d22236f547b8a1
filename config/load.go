package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse reads a configuration from YAML, applies the defaults and validates it. file names the
// source in problems. The error is Problems, every problem in the file.
func Parse(file string, data []byte) (*Config, error) {
	return load(file, data, nil)
}

// Load reads the file at path, applies the environment's overrides (see ApplyEnv) and validates
// the result. A file that cannot be read is a plain error; anything wrong in it is Problems.
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return load(path, data, getenv)
}

// Check loads the file at path as Load does and prints `ok`, or every problem one per line, to
// w. It returns non-nil when the configuration cannot be used.
func Check(path string, getenv func(string) string, w io.Writer) error {
	_, err := Load(path, getenv)
	var ps Problems
	switch {
	case err == nil:
		_, werr := fmt.Fprintln(w, "ok")
		return werr
	case errors.As(err, &ps):
		fmt.Fprintln(w, ps.Error())
	default:
		fmt.Fprintf(w, "%s: %v\n", path, err)
	}
	return err
}

// load parses, applies the environment (when getenv is not nil) and validates once, after the
// environment, so that a value the environment supplies is not reported missing from the file.
// The walk's problems (syntax, types, unknown keys) and validation's are reported together.
func load(file string, data []byte, getenv func(string) string) (*Config, error) {
	c, probs := parse(file, data)
	if c == nil {
		return nil, probs
	}
	if getenv != nil {
		if err := c.ApplyEnv(getenv); err != nil {
			probs = append(probs, asProblems(err)...)
		}
	}
	if err := c.Validate(); err != nil {
		probs = append(probs, asProblems(err)...)
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

func asProblems(err error) Problems {
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	return Problems{{Message: err.Error()}}
}

// parse decodes data into a defaulted Config and returns it with the problems found on the way.
// The Config is nil only when the file is not YAML at all.
func parse(file string, data []byte) (*Config, Problems) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{syntaxProblem(file, data, err)}
	}
	c := &Config{File: file, lines: map[string]int{}}
	if len(doc.Content) == 0 { // an empty file is the defaults
		c.applyDefaults()
		return c, nil
	}
	root := doc.Content[0]
	w := newTree(file)
	w.walk(root, reflect.TypeFor[Config](), "")
	c.lines, c.bad = w.lines, w.bad
	probs, ok := w.decode(root, c)
	c.bad = w.bad
	if !ok {
		return nil, probs
	}
	c.File = file
	c.applyDefaults()
	return c, probs
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

// maxScanLines and maxScanBytes bound the search for a syntax error's line, which parses the
// file once per line; a larger file keeps the line yaml.v3 gave.
const (
	maxScanLines = 2000
	maxScanBytes = 128 << 10
)

// syntaxProblem turns a YAML syntax error into a Problem on the line that is wrong. yaml.v3
// names the line before the construct it was parsing (a 0-based context line), not the line it
// gave up on; the first prefix of the file that fails with the same message ends on that line.
func syntaxProblem(file string, data []byte, err error) Problem {
	p := problemFromYAML(file, err.Error())
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > maxScanLines || len(data) > maxScanBytes {
		return p
	}
	end := 0
	for i, l := range lines {
		end += len(l)
		if i+1 < p.Line {
			continue // an earlier prefix parses: the error cannot be before yaml's context line
		}
		var n yaml.Node
		if perr := yaml.Unmarshal(data[:end], &n); perr != nil && problemFromYAML(file, perr.Error()).Message == p.Message {
			p.Line = i + 1
			break
		}
	}
	return p
}

// decode decodes root into v and returns the walk's problems with those of the decoder the walk
// did not report; ok is false when v could not be decoded at all.
func (w *tree) decode(root *yaml.Node, v any) (probs Problems, ok bool) {
	probs = w.probs
	if err := root.Decode(v); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return append(probs, problemFromYAML(w.file, err.Error())), false
		}
		// The walk reports the same mistakes with their field; keep only what it missed.
		for _, m := range te.Errors {
			if p := problemFromYAML(w.file, m); !w.reported[p.Line] {
				p.Field = fieldOnLine(w.lines, p.Line)
				probs = append(probs, p)
				if p.Field != "" {
					w.bad = append(w.bad, p.Field)
				}
			}
		}
	}
	return probs, true
}

// fieldOnLine names the deepest field whose key is on line l, for the decoder's problems.
func fieldOnLine(lines map[string]int, l int) string {
	field := ""
	for path, pl := range lines {
		if pl == l && (len(path) > len(field) || len(path) == len(field) && path < field) {
			field = path
		}
	}
	return field
}

// line returns the line of path, or of its nearest ancestor that has one: a missing field is
// reported on the mapping that lacks it.
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
