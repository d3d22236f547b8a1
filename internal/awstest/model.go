package awstest

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
)

//go:generate go run ./gen -models /usr/lib/python3/dist-packages/botocore/data -out testdata/models

//go:embed testdata/models/*.json
var modelFiles embed.FS

// model is one service's operations and shapes, from AWS's own service model.
type model struct {
	Metadata   map[string]any            `json:"metadata"`
	Operations map[string]map[string]any `json:"operations"`
	Shapes     map[string]map[string]any `json:"shapes"`
}

func loadModel(service string) (*model, error) {
	b, err := modelFiles.ReadFile("testdata/models/" + service + ".json")
	if err != nil {
		return nil, err
	}
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("awstest: model %s: %w", service, err)
	}
	return &m, nil
}

// shapeOf returns the input or output shape name of an operation.
func (m *model) shapeOf(op, which string) string {
	o, ok := m.Operations[op]
	if !ok {
		return ""
	}
	ref, _ := o[which].(map[string]any)
	s, _ := ref["shape"].(string)
	return s
}

// validate checks a decoded JSON value against a shape of the awsJson protocol: structures
// (members, required, no unknown members), lists, maps, strings (enum, length), numbers (range),
// booleans, timestamps (epoch seconds: numbers) and blobs (base64 strings).
func (m *model) validate(shapeName string, v any, path string) []string {
	shape, ok := m.Shapes[shapeName]
	if !ok {
		return []string{fmt.Sprintf("%s: shape %s is not in the model", path, shapeName)}
	}
	if v == nil {
		return nil // absent and null members are the same on the wire
	}
	typ, _ := shape["type"].(string)
	switch typ {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object (%s)", path, shapeName)}
		}
		members, _ := shape["members"].(map[string]any)
		var probs []string
		if req, ok := shape["required"].([]any); ok {
			for _, r := range req {
				if _, ok := obj[r.(string)]; !ok {
					probs = append(probs, fmt.Sprintf("%s: %s is required", path, r))
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			mem, ok := members[k].(map[string]any)
			if !ok {
				// Error bodies carry __type and message beside the modelled members.
				if k == "__type" || (strings.EqualFold(k, "message") && shape["exception"] == true) {
					continue
				}
				probs = append(probs, fmt.Sprintf("%s: unknown member %q of %s", path, k, shapeName))
				continue
			}
			probs = append(probs, m.validate(mem["shape"].(string), obj[k], path+"."+k)...)
		}
		return probs
	case "list":
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want a list (%s)", path, shapeName)}
		}
		var probs []string
		if lo, ok := shape["min"].(float64); ok && float64(len(arr)) < lo {
			probs = append(probs, fmt.Sprintf("%s: fewer than %v items", path, lo))
		}
		if hi, ok := shape["max"].(float64); ok && float64(len(arr)) > hi {
			probs = append(probs, fmt.Sprintf("%s: more than %v items", path, hi))
		}
		member := shape["member"].(map[string]any)["shape"].(string)
		for i, x := range arr {
			probs = append(probs, m.validate(member, x, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return probs
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want a map (%s)", path, shapeName)}
		}
		var probs []string
		value := shape["value"].(map[string]any)["shape"].(string)
		for k, x := range obj {
			probs = append(probs, m.validate(value, x, path+"."+k)...)
		}
		return probs
	case "string":
		s, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: want a string (%s)", path, shapeName)}
		}
		if enum, ok := shape["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				if e == s {
					found = true
				}
			}
			if !found {
				return []string{fmt.Sprintf("%s: %q is not a %s", path, s, shapeName)}
			}
		}
		if lo, ok := shape["min"].(float64); ok && float64(len(s)) < lo {
			return []string{fmt.Sprintf("%s: shorter than %v (%s)", path, lo, shapeName)}
		}
		if hi, ok := shape["max"].(float64); ok && float64(len(s)) > hi {
			return []string{fmt.Sprintf("%s: longer than %v (%s)", path, hi, shapeName)}
		}
	case "integer", "long":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return []string{fmt.Sprintf("%s: want an integer (%s)", path, shapeName)}
		}
		if lo, ok := shape["min"].(float64); ok && f < lo {
			return []string{fmt.Sprintf("%s: %v is less than %v", path, f, lo)}
		}
		if hi, ok := shape["max"].(float64); ok && f > hi {
			return []string{fmt.Sprintf("%s: %v is more than %v", path, f, hi)}
		}
	case "double", "float":
		if _, ok := v.(float64); !ok {
			return []string{fmt.Sprintf("%s: want a number (%s)", path, shapeName)}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return []string{fmt.Sprintf("%s: want a boolean (%s)", path, shapeName)}
		}
	case "timestamp":
		// awsJson timestamps are epoch seconds as numbers; aws-sdk-go-v2 rejects strings.
		if _, ok := v.(float64); !ok {
			return []string{fmt.Sprintf("%s: want epoch seconds as a number (%s)", path, shapeName)}
		}
	case "blob":
		if _, ok := v.(string); !ok {
			return []string{fmt.Sprintf("%s: want base64 text (%s)", path, shapeName)}
		}
	default:
		return []string{fmt.Sprintf("%s: shape %s has type %q the validator does not know", path, shapeName, typ)}
	}
	return nil
}
