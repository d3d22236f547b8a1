package githubtest

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// validator checks JSON values against the OpenAPI schema subset GitHub's description uses:
// type (with nullable), enum, required, properties, additionalProperties: false, items,
// anyOf/oneOf/allOf, $ref to components, maxLength, minimum and maximum. Unknown object keys are
// allowed unless the schema forbids them, as GitHub itself ignores them.
type validator struct {
	schemas map[string]json.RawMessage
	cache   map[string]map[string]any
}

func (v *validator) component(name string) (map[string]any, error) {
	if s, ok := v.cache[name]; ok {
		return s, nil
	}
	raw, ok := v.schemas[name]
	if !ok {
		return nil, fmt.Errorf("schema %q is not in the subset", name)
	}
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	v.cache[name] = s
	return s, nil
}

// validate returns every mismatch of value against schema, each with its JSON path.
func (v *validator) validate(schema map[string]any, value any, path string) []string {
	if ref, ok := schema["$ref"].(string); ok {
		s, err := v.component(strings.TrimPrefix(ref, "#/components/schemas/"))
		if err != nil {
			return []string{path + ": " + err.Error()}
		}
		return v.validate(s, value, path)
	}
	if value == nil {
		if schema["nullable"] == true || typeAllows(schema, "null") || (schema["type"] == nil && len(schema) == 0) {
			return nil
		}
		if _, hasType := schema["type"]; hasType {
			return []string{path + ": null is not allowed"}
		}
	}
	var probs []string
	if all, ok := schema["allOf"].([]any); ok {
		for _, s := range all {
			probs = append(probs, v.validate(s.(map[string]any), value, path)...)
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := schema[key].([]any)
		if !ok {
			continue
		}
		var why []string
		matched := false
		for _, s := range alts {
			p := v.validate(s.(map[string]any), value, path)
			if len(p) == 0 {
				matched = true
				break
			}
			why = append(why, strings.Join(p, "; "))
		}
		if !matched {
			probs = append(probs, fmt.Sprintf("%s: matches none of %s: [%s]", path, key, strings.Join(why, "] or [")))
		}
	}
	if t, ok := schema["type"]; ok && value != nil {
		if !typeMatches(t, value) {
			return append(probs, fmt.Sprintf("%s: want %v, got %s", path, t, jsonType(value)))
		}
	}
	if enum, ok := schema["enum"].([]any); ok && value != nil {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(value) {
				found = true
				break
			}
		}
		if !found {
			probs = append(probs, fmt.Sprintf("%s: %v is not one of %v", path, value, enum))
		}
	}
	switch x := value.(type) {
	case map[string]any:
		probs = append(probs, v.object(schema, x, path)...)
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range x {
				probs = append(probs, v.validate(items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case string:
		if m, ok := schema["maxLength"].(float64); ok && utf8.RuneCountInString(x) > int(m) {
			probs = append(probs, fmt.Sprintf("%s: longer than %d characters", path, int(m)))
		}
	case float64:
		if m, ok := schema["minimum"].(float64); ok && x < m {
			probs = append(probs, fmt.Sprintf("%s: %v is less than %v", path, x, m))
		}
		if m, ok := schema["maximum"].(float64); ok && x > m {
			probs = append(probs, fmt.Sprintf("%s: %v is more than %v", path, x, m))
		}
	}
	return probs
}

func (v *validator) object(schema map[string]any, obj map[string]any, path string) []string {
	var probs []string
	props, _ := schema["properties"].(map[string]any)
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				probs = append(probs, fmt.Sprintf("%s: %q is required", path, r))
			}
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ps, ok := props[k].(map[string]any); ok {
			probs = append(probs, v.validate(ps, obj[k], path+"."+k)...)
			continue
		}
		switch ap := schema["additionalProperties"].(type) {
		case bool:
			if !ap {
				probs = append(probs, fmt.Sprintf("%s: unknown property %q", path, k))
			}
		case map[string]any:
			probs = append(probs, v.validate(ap, obj[k], path+"."+k)...)
		}
	}
	return probs
}

func typeAllows(schema map[string]any, t string) bool {
	if ts, ok := schema["type"].([]any); ok {
		for _, x := range ts {
			if x == t {
				return true
			}
		}
	}
	return false
}

func typeMatches(t any, value any) bool {
	switch tt := t.(type) {
	case string:
		return matchesOne(tt, value)
	case []any:
		for _, x := range tt {
			if s, ok := x.(string); ok && matchesOne(s, value) {
				return true
			}
		}
	}
	return false
}

func matchesOne(t string, value any) bool {
	switch t {
	case "object":
		_, ok := value.(map[string]any)
		return ok
	case "array":
		_, ok := value.([]any)
		return ok
	case "string":
		_, ok := value.(string)
		return ok
	case "boolean":
		_, ok := value.(bool)
		return ok
	case "number":
		_, ok := value.(float64)
		return ok
	case "integer":
		f, ok := value.(float64)
		return ok && f == math.Trunc(f)
	case "null":
		return value == nil
	}
	return false
}

func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		if x == math.Trunc(x) {
			return "an integer"
		}
		return "a number"
	}
	return "null"
}
