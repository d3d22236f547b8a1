package awstest

import (
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

//go:generate go run ./gen -out testdata/models

//go:embed testdata/models/*.json
var modelFiles embed.FS

// model is one service's operations and shapes, from AWS's own service model.
type model struct {
	Metadata   map[string]any            `json:"metadata"`
	Operations map[string]map[string]any `json:"operations"`
	Shapes     map[string]map[string]any `json:"shapes"`

	patterns map[string]*regexp.Regexp // shape -> its pattern, where RE2 can express it
}

func loadModel(service string) (*model, error) {
	b, err := modelFiles.ReadFile("testdata/models/" + service + ".json")
	if err != nil {
		return nil, fmt.Errorf("reading model %s: %w", service, err)
	}
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decoding model %s: %w", service, err)
	}
	m.patterns = map[string]*regexp.Regexp{}
	for name, s := range m.Shapes {
		if p, ok := s["pattern"].(string); ok {
			// AWS services match the whole value (Java's String.matches), so anchor it.
			if re, err := regexp.Compile(`^(?:` + javaToRE2(p) + `)$`); err == nil {
				m.patterns[name] = re
			}
		}
	}
	return &m, nil
}

// javaUnicode matches the \uXXXX escapes of the models' Java-flavoured patterns.
var javaUnicode = regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`)

// javaToRE2 rewrites \uXXXX escapes as RE2's \x{XXXX}; patterns RE2 still cannot compile are
// not checked.
func javaToRE2(p string) string { return javaUnicode.ReplaceAllString(p, `\x{$1}`) }

// protocol is "json" or "query".
func (m *model) protocol() string { s, _ := m.Metadata["protocol"].(string); return s }

// signingName is the service name in SigV4 credential scopes.
func (m *model) signingName() string {
	if s, ok := m.Metadata["signingName"].(string); ok {
		return s
	}
	s, _ := m.Metadata["endpointPrefix"].(string)
	return s
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

// commonErrors are the errors every AWS service may answer, beside those an operation models.
var commonErrors = []string{"AccessDenied", "AccessDeniedException", "IncompleteSignature", "InternalFailure",
	"InvalidAction", "InvalidClientTokenId", "InvalidSignatureException", "MissingAuthenticationToken",
	"MissingAuthenticationTokenException", "SerializationException", "SignatureDoesNotMatch", "Throttling",
	"ThrottlingException", "UnknownOperationException", "UnrecognizedClientException", "ValidationError",
	"ValidationException"}

// errorAllowed says whether op may answer the error code: the operation lists it (by shape
// name, or the code a query error shape declares) or it is common to every service.
func (m *model) errorAllowed(op, code string) bool {
	if slices.Contains(commonErrors, code) {
		return true
	}
	errs, _ := m.Operations[op]["errors"].([]any)
	for _, e := range errs {
		name, _ := e.(map[string]any)["shape"].(string)
		if name == code {
			return true
		}
		if info, ok := m.Shapes[name]["error"].(map[string]any); ok && info["code"] == code {
			return true
		}
	}
	return false
}

// validate checks a decoded value against a shape: structures (members, required, no unknown
// members), lists and maps (and their lengths), strings (enum, length, pattern), integers and
// longs (whole numbers, range), doubles, booleans, timestamps (epoch seconds as numbers in
// awsJson, ISO 8601 text in awsQuery) and blobs (base64 text). Values decoded from JSON are
// float64, string, bool, []any and map[string]any.
func (m *model) validate(shapeName string, v any, path string) []string {
	shape, ok := m.Shapes[shapeName]
	if !ok {
		return []string{fmt.Sprintf("%s: shape %s is not in the model", path, shapeName)}
	}
	if v == nil {
		return nil // absent and null members are the same on the wire
	}
	bad := func(format string, args ...any) []string {
		return []string{path + ": " + fmt.Sprintf(format, args...) + " (" + shapeName + ")"}
	}
	typ, _ := shape["type"].(string)
	switch typ {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("want an object")
		}
		return m.validateStructure(shapeName, shape, obj, path)
	case "list":
		arr, ok := v.([]any)
		if !ok {
			return bad("want a list")
		}
		probs := m.length(shape, len(arr), path, shapeName)
		member := shape["member"].(map[string]any)["shape"].(string)
		for i, x := range arr {
			probs = append(probs, m.validate(member, x, fmt.Sprintf("%s[%d]", path, i))...)
		}
		return probs
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return bad("want a map")
		}
		probs := m.length(shape, len(obj), path, shapeName)
		key := shape["key"].(map[string]any)["shape"].(string)
		value := shape["value"].(map[string]any)["shape"].(string)
		for _, k := range sortedKeys(obj) {
			probs = append(probs, m.validate(key, k, path+" key "+k)...)
			probs = append(probs, m.validate(value, obj[k], path+"."+k)...)
		}
		return probs
	case "string":
		s, ok := v.(string)
		if !ok {
			return bad("want a string")
		}
		if enum, ok := shape["enum"].([]any); ok && !slices.Contains(enum, any(s)) {
			return bad("%q is not one of %v", s, enum)
		}
		if probs := m.length(shape, utf8.RuneCountInString(s), path, shapeName); probs != nil {
			return probs
		}
		if re := m.patterns[shapeName]; re != nil && !re.MatchString(s) {
			return bad("%q does not match %s", s, shape["pattern"])
		}
	case "integer", "long":
		f, ok := v.(float64)
		if !ok || f != math.Trunc(f) {
			return bad("want an integer")
		}
		if lo, ok := shape["min"].(float64); ok && f < lo {
			return bad("%v is less than %v", f, lo)
		}
		if hi, ok := shape["max"].(float64); ok && f > hi {
			return bad("%v is more than %v", f, hi)
		}
	case "double", "float":
		if _, ok := v.(float64); !ok {
			return bad("want a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("want a boolean")
		}
	case "timestamp":
		if m.protocol() == "query" {
			s, ok := v.(string)
			if _, err := time.Parse(time.RFC3339, s); !ok || err != nil {
				return bad("want an ISO 8601 timestamp")
			}
			return nil
		}
		// awsJson timestamps are epoch seconds as numbers; aws-sdk-go-v2 rejects strings.
		if _, ok := v.(float64); !ok {
			return bad("want epoch seconds as a number")
		}
	case "blob":
		s, ok := v.(string)
		if !ok {
			return bad("want base64 text")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad("want base64 text: %v", err)
		}
		return m.length(shape, len(b), path, shapeName)
	default:
		return bad("type %q is unknown to the validator", typ)
	}
	return nil
}

func (m *model) validateStructure(shapeName string, shape map[string]any, obj map[string]any, path string) []string {
	members, _ := shape["members"].(map[string]any)
	var probs []string
	if req, ok := shape["required"].([]any); ok {
		for _, r := range req {
			if obj[r.(string)] == nil {
				probs = append(probs, fmt.Sprintf("%s: %s is required (%s)", path, r, shapeName))
			}
		}
	}
	for _, k := range sortedKeys(obj) {
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
}

// length checks a list's, map's or string's length against the shape's min and max.
func (m *model) length(shape map[string]any, n int, path, shapeName string) []string {
	if lo, ok := shape["min"].(float64); ok && float64(n) < lo {
		return []string{fmt.Sprintf("%s: length %d is less than %v (%s)", path, n, lo, shapeName)}
	}
	if hi, ok := shape["max"].(float64); ok && float64(n) > hi {
		return []string{fmt.Sprintf("%s: length %d is more than %v (%s)", path, n, hi, shapeName)}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
