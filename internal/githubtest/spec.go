package githubtest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// operation is one operation of the REST description subset.
type operation struct {
	id        string
	method    string
	path      string
	segs      []string
	greedy    bool // has a parameter that may contain "/"
	request   map[string]any
	responses map[string]map[string]any // status -> schema (nil: no body)
}

// greedyParams may contain slashes (refs, paths), per GitHub's description.
var greedyParams = map[string]bool{"{ref}": true, "{basehead}": true, "{path}": true, "{branch}": true}

func (s *Server) loadSubset() error {
	var sub struct {
		Operations []struct {
			Method      string                    `json:"method"`
			Path        string                    `json:"path"`
			OperationID string                    `json:"operation_id"`
			Request     map[string]any            `json:"request"`
			Responses   map[string]map[string]any `json:"responses"`
		} `json:"operations"`
		Schemas map[string]json.RawMessage `json:"schemas"`
	}
	if err := json.Unmarshal(subsetJSON, &sub); err != nil {
		return fmt.Errorf("githubtest: reading the REST subset: %w", err)
	}
	s.v = &validator{schemas: sub.Schemas, cache: map[string]map[string]any{}}
	for _, o := range sub.Operations {
		op := &operation{id: o.OperationID, method: o.Method, path: o.Path, segs: strings.Split(strings.Trim(o.Path, "/"), "/"),
			request: o.Request, responses: o.Responses}
		for _, seg := range op.segs {
			if greedyParams[seg] {
				op.greedy = true
			}
		}
		s.ops = append(s.ops, op)
	}
	// Stricter templates first: literal segments before parameters, greedy ones last.
	sort.SliceStable(s.ops, func(i, j int) bool {
		if s.ops[i].greedy != s.ops[j].greedy {
			return !s.ops[i].greedy
		}
		return literals(s.ops[i]) > literals(s.ops[j])
	})
	return nil
}

func literals(op *operation) int {
	n := 0
	for _, seg := range op.segs {
		if !strings.HasPrefix(seg, "{") {
			n++
		}
	}
	return n
}

// match finds the operation for a request and its path parameters.
func (s *Server) match(method, path string) (*operation, map[string]string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for _, op := range s.ops {
		if op.method != method {
			continue
		}
		if params, ok := matchSegs(op.segs, parts); ok {
			return op, params
		}
	}
	return nil, nil
}

func matchSegs(segs, parts []string) (map[string]string, bool) {
	params := map[string]string{}
	i := 0
	for si, seg := range segs {
		if i >= len(parts) {
			return nil, false
		}
		switch {
		case greedyParams[seg]:
			// Take as many parts as leave enough for the segments after this one.
			rest := len(segs) - si - 1
			n := len(parts) - i - rest
			if n < 1 {
				return nil, false
			}
			params[strings.Trim(seg, "{}")] = strings.Join(parts[i:i+n], "/")
			i += n
		case strings.HasPrefix(seg, "{"):
			if parts[i] == "" {
				return nil, false
			}
			params[strings.Trim(seg, "{}")] = parts[i]
			i++
		default:
			if parts[i] != seg {
				return nil, false
			}
			i++
		}
	}
	return params, i == len(parts)
}
