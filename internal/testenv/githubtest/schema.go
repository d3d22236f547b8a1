package githubtest

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// validator checks JSON values (as decoded by encoding/json into any) against the part of
// JSON Schema that GitHub's description uses: type (also as an array, and nullable), enum,
// required, properties, additionalProperties, items, anyOf/oneOf/allOf, $ref to components,
// minimum/maximum, minLength/maxLength and minItems/maxItems. Formats and patterns are not checked.
//
// An object key the schema does not name is an error only where the schema says
// additionalProperties: false; elsewhere GitHub ignores it, so it is reported as a note.
type validator struct {
	schemas map[string]map[string]any
}

// validate returns every mismatch of value against schema, each with its JSON path.
func (v *validator) validate(schema map[string]any, value any, path string) []string {
	probs, _ := v.check(schema, value, path)
	return probs
}

// check returns the mismatches of value against schema, and notes on object keys the schema
// does not name where unknown keys are allowed.
func (v *validator) check(schema map[string]any, value any, path string) (probs, notes []string) {
	w := &walk{v: v}
	probs = w.value(schema, value, path, true)
	return probs, w.notes
}

// walk is one validation, collecting notes as it goes.
type walk struct {
	v     *validator
	notes []string
}

func (v *validator) resolve(schema map[string]any) (map[string]any, error) {
	for range 32 { // a chain of references longer than this is a loop
		ref, ok := schema["$ref"].(string)
		if !ok {
			return schema, nil
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return nil, fmt.Errorf("reference %q is not to a component schema", ref)
		}
		s, ok := v.schemas[name]
		if !ok {
			return nil, fmt.Errorf("schema %q is not in the subset", name)
		}
		schema = s
	}
	return nil, fmt.Errorf("reference loop at %v", schema["$ref"])
}

// value checks one value; takeNotes is false inside the branches of anyOf/oneOf, whose
// unknown keys are judged once, against every branch together.
func (w *walk) value(schema map[string]any, value any, path string, takeNotes bool) []string {
	schema, err := w.v.resolve(schema)
	if err != nil {
		return []string{path + ": " + err.Error()}
	}
	if value == nil {
		if schema["nullable"] == true || typeAllows(schema["type"], "null") {
			return nil
		}
		if _, typed := schema["type"]; typed {
			return []string{path + ": null is not allowed"}
		}
	}
	var probs []string
	if all, ok := schema["allOf"].([]any); ok {
		for _, s := range all {
			if m, ok := s.(map[string]any); ok {
				probs = append(probs, w.value(m, value, path, false)...)
			}
		}
	}
	probs = append(probs, w.alternatives(schema, "anyOf", value, path)...)
	probs = append(probs, w.alternatives(schema, "oneOf", value, path)...)
	if t, ok := schema["type"]; ok && value != nil && !typeAllowsValue(t, value) {
		return append(probs, fmt.Sprintf("%s: want %v, got %s", path, t, jsonType(value)))
	}
	if enum, ok := schema["enum"].([]any); ok && !inEnum(enum, value) {
		probs = append(probs, fmt.Sprintf("%s: %s is not one of %v", path, show(value), enum))
	}
	switch x := value.(type) {
	case map[string]any:
		probs = append(probs, w.object(schema, x, path, takeNotes)...)
	case []any:
		probs = append(probs, w.array(schema, x, path, takeNotes)...)
	case string:
		n := float64(utf8.RuneCountInString(x))
		if m, ok := schema["maxLength"].(float64); ok && n > m {
			probs = append(probs, fmt.Sprintf("%s: longer than %v characters", path, m))
		}
		if m, ok := schema["minLength"].(float64); ok && n < m {
			probs = append(probs, fmt.Sprintf("%s: shorter than %v characters", path, m))
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

// alternatives checks anyOf (at least one branch) or oneOf (exactly one branch).
func (w *walk) alternatives(schema map[string]any, key string, value any, path string) []string {
	alts, ok := schema[key].([]any)
	if !ok {
		return nil
	}
	var why []string
	matched := 0
	for _, s := range alts {
		m, ok := s.(map[string]any)
		if !ok {
			continue
		}
		p := w.value(m, value, path, false)
		if len(p) == 0 {
			matched++
			continue
		}
		why = append(why, strings.Join(p, "; "))
	}
	switch {
	case matched == 0:
		return []string{fmt.Sprintf("%s: matches none of %s: [%s]", path, key, strings.Join(why, "] or ["))}
	case key == "oneOf" && matched > 1:
		return []string{fmt.Sprintf("%s: matches %d branches of oneOf, want exactly one", path, matched)}
	}
	return nil
}

func (w *walk) array(schema map[string]any, arr []any, path string, takeNotes bool) []string {
	var probs []string
	if m, ok := schema["minItems"].(float64); ok && float64(len(arr)) < m {
		probs = append(probs, fmt.Sprintf("%s: fewer than %v items", path, m))
	}
	if m, ok := schema["maxItems"].(float64); ok && float64(len(arr)) > m {
		probs = append(probs, fmt.Sprintf("%s: more than %v items", path, m))
	}
	if items, ok := schema["items"].(map[string]any); ok {
		for i, item := range arr {
			probs = append(probs, w.value(items, item, fmt.Sprintf("%s[%d]", path, i), takeNotes)...)
		}
	}
	return probs
}

func (w *walk) object(schema map[string]any, obj map[string]any, path string, takeNotes bool) []string {
	var probs []string
	props, _ := schema["properties"].(map[string]any)
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				if _, ok := obj[name]; !ok {
					probs = append(probs, fmt.Sprintf("%s: %q is required", path, name))
				}
			}
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var known map[string]bool
	for _, k := range keys {
		if ps, ok := props[k].(map[string]any); ok {
			probs = append(probs, w.value(ps, obj[k], path+"."+k, takeNotes)...)
			continue
		}
		switch ap := schema["additionalProperties"].(type) {
		case bool:
			if !ap {
				probs = append(probs, fmt.Sprintf("%s: unknown property %q", path, k))
			}
			continue
		case map[string]any:
			probs = append(probs, w.value(ap, obj[k], path+"."+k, takeNotes)...)
			continue
		}
		if !takeNotes {
			continue
		}
		if known == nil {
			known = map[string]bool{}
			w.v.propertyNames(schema, known, 0)
		}
		if !known[k] {
			w.notes = append(w.notes, fmt.Sprintf("%s: property %q is not in the description (GitHub ignores it)", path, k))
		}
	}
	return probs
}

// propertyNames collects the properties a schema names, through its allOf/anyOf/oneOf branches.
func (v *validator) propertyNames(schema map[string]any, into map[string]bool, depth int) {
	schema, err := v.resolve(schema)
	if err != nil || depth > 8 {
		return
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		for k := range props {
			into[k] = true
		}
	}
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		alts, _ := schema[key].([]any)
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok {
				v.propertyNames(m, into, depth+1)
			}
		}
	}
}

func inEnum(enum []any, value any) bool {
	for _, e := range enum {
		if reflect.DeepEqual(e, value) {
			return true
		}
	}
	return false
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func typeAllows(t any, name string) bool {
	switch tt := t.(type) {
	case string:
		return tt == name
	case []any:
		for _, x := range tt {
			if x == name {
				return true
			}
		}
	}
	return false
}

func typeAllowsValue(t any, value any) bool {
	switch tt := t.(type) {
	case string:
		return matchesType(tt, value)
	case []any:
		for _, x := range tt {
			if s, ok := x.(string); ok && matchesType(s, value) {
				return true
			}
		}
	}
	return false
}

func matchesType(t string, value any) bool {
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
