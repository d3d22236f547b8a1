package githubtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// operation is one operation of the REST description subset.
type operation struct {
	id        string
	method    string
	path      string
	aliasOf   string // the operation whose handler serves this one
	segs      []segment
	greedy    bool // has a parameter that may contain "/"
	params    map[string]map[string]any
	request   map[string]any
	optional  bool                      // the request body may be left out
	responses map[string]map[string]any // status -> schema (nil: no body)
}

// segment is one "/"-separated part of a path template: a literal, a parameter, or a literal
// with parameters inside it ("{base}...{head}").
type segment struct {
	literal string   // set when the segment has no parameter
	params  []string // parameter names in order
	seps    []string // the literals around them: seps[0] params[0] seps[1] ... seps[n]
	greedy  bool     // a lone parameter that may span several segments
}

// greedyParams may contain slashes in any operation, as NOTES.md observes; the description
// marks others (commit_sha) with x-multi-segment.
var greedyParams = map[string]bool{"ref": true, "basehead": true, "path": true, "branch": true}

type subsetFile struct {
	Operations []struct {
		Method      string `json:"method"`
		Path        string `json:"path"`
		OperationID string `json:"operation_id"`
		AliasOf     string `json:"alias_of"`
		Parameters  []struct {
			Name         string         `json:"name"`
			Schema       map[string]any `json:"schema"`
			MultiSegment bool           `json:"multi_segment"`
		} `json:"parameters"`
		Request         map[string]any            `json:"request"`
		RequestRequired bool                      `json:"request_required"`
		Responses       map[string]map[string]any `json:"responses"`
	} `json:"operations"`
	Schemas map[string]json.RawMessage `json:"schemas"`
}

// loadSubset reads the generated description subset into operations, stricter templates first.
func loadSubset(raw []byte) ([]*operation, *validator, error) {
	var sub subsetFile
	if err := json.Unmarshal(raw, &sub); err != nil {
		return nil, nil, fmt.Errorf("reading the REST subset: %w", err)
	}
	v := &validator{schemas: map[string]map[string]any{}}
	for name, rawSchema := range sub.Schemas {
		var s map[string]any
		if err := json.Unmarshal(rawSchema, &s); err != nil {
			return nil, nil, fmt.Errorf("reading schema %s: %w", name, err)
		}
		v.schemas[name] = s
	}
	var ops []*operation
	for _, o := range sub.Operations {
		op := &operation{id: o.OperationID, method: o.Method, path: o.Path, aliasOf: o.AliasOf,
			params: map[string]map[string]any{}, request: o.Request, optional: !o.RequestRequired, responses: o.Responses}
		multi := map[string]bool{}
		for _, p := range o.Parameters {
			op.params[p.Name] = p.Schema
			multi[p.Name] = p.MultiSegment || greedyParams[p.Name]
		}
		for _, part := range strings.Split(strings.Trim(o.Path, "/"), "/") {
			seg := parseSegment(part)
			seg.greedy = seg.literal == "" && len(seg.params) == 1 && seg.seps[0] == "" && seg.seps[1] == "" && multi[seg.params[0]]
			op.greedy = op.greedy || seg.greedy
			op.segs = append(op.segs, seg)
		}
		ops = append(ops, op)
	}
	sort.SliceStable(ops, func(i, j int) bool { return stricter(ops[i], ops[j]) })
	return ops, v, nil
}

// stricter orders templates for matching: aliases last, before them templates without a
// multi-segment parameter, then those with more literal segments.
func stricter(a, b *operation) bool {
	if (a.aliasOf == "") != (b.aliasOf == "") {
		return a.aliasOf == ""
	}
	if a.greedy != b.greedy {
		return !a.greedy
	}
	if la, lb := literals(a), literals(b); la != lb {
		return la > lb
	}
	return a.path < b.path
}

func literals(op *operation) int {
	n := 0
	for _, s := range op.segs {
		if s.literal != "" {
			n++
		}
	}
	return n
}

func parseSegment(part string) segment {
	if !strings.Contains(part, "{") {
		return segment{literal: part}
	}
	var seg segment
	rest := part
	for {
		before, after, ok := strings.Cut(rest, "{")
		if !ok {
			seg.seps = append(seg.seps, rest)
			return seg
		}
		name, tail, _ := strings.Cut(after, "}")
		seg.seps = append(seg.seps, before)
		seg.params = append(seg.params, name)
		rest = tail
	}
}

// match finds the operation for a request path (as escaped on the wire) and its path
// parameters, unescaped. It returns the problems of the nearest template when a template's
// shape matched but a parameter did not fit its schema.
func match(ops []*operation, v *validator, method, escapedPath string) (*operation, map[string]string, []string) {
	parts := strings.Split(strings.Trim(escapedPath, "/"), "/")
	var near []string
	for _, op := range ops {
		if op.method != method {
			continue
		}
		params, ok := matchSegs(op.segs, parts)
		if !ok {
			continue
		}
		var probs []string
		for name, val := range params {
			if schema := op.params[name]; schema != nil {
				probs = append(probs, v.validate(schema, paramValue(schema, val), "path parameter "+name)...)
			}
		}
		if len(probs) == 0 {
			return op, params, nil
		}
		if near == nil {
			sort.Strings(probs)
			near = append([]string{op.method + " " + op.path + ":"}, probs...)
		}
	}
	return nil, nil, near
}

// paramValue turns a path parameter into the JSON value its schema expects, so the validator
// can check it: "12" is an integer, "x" is not.
func paramValue(schema map[string]any, val string) any {
	if t, _ := schema["type"].(string); t == "integer" || t == "number" {
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			return f
		}
	}
	return val
}

func matchSegs(segs []segment, parts []string) (map[string]string, bool) {
	params := map[string]string{}
	i := 0
	for si, seg := range segs {
		if i >= len(parts) || parts[i] == "" {
			return nil, false
		}
		switch {
		case seg.literal != "":
			if parts[i] != seg.literal {
				return nil, false
			}
			i++
		case seg.greedy:
			// Take as many parts as leave one for every segment after this one.
			n := len(parts) - i - (len(segs) - si - 1)
			if n < 1 {
				return nil, false
			}
			val, err := unescapeAll(parts[i : i+n])
			if err != nil {
				return nil, false
			}
			params[seg.params[0]] = val
			i += n
		default:
			p, err := url.PathUnescape(parts[i])
			if err != nil || !matchInside(seg, p, params) {
				return nil, false
			}
			i++
		}
	}
	return params, i == len(parts)
}

func unescapeAll(parts []string) (string, error) {
	out := make([]string, len(parts))
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return "", err
		}
		out[i] = u
	}
	return strings.Join(out, "/"), nil
}

// matchInside matches one segment with parameters inside literals, such as "{base}...{head}";
// each parameter takes the shortest text that lets the next literal follow.
func matchInside(seg segment, part string, params map[string]string) bool {
	rest, ok := strings.CutPrefix(part, seg.seps[0])
	if !ok {
		return false
	}
	for k, name := range seg.params {
		sep := seg.seps[k+1]
		var val string
		if sep == "" && k == len(seg.params)-1 {
			val, rest = rest, ""
		} else {
			before, after, found := strings.Cut(rest, sep)
			if !found {
				return false
			}
			val, rest = before, after
		}
		if val == "" {
			return false
		}
		params[name] = val
	}
	return rest == ""
}
