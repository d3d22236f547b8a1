// Package payload reads the few fields a webhook handler needs out of a large JSON document in
// one pass. GitHub's payloads are 5-30 KB, of which a handler needs a dozen scalars; decoding the
// whole document with encoding/json costs several times what the rest of intake does together.
// The scanner still validates the entire document (RFC 8259 grammar), so malformed input is
// rejected exactly as json.Valid would, and the values it returns are decoded with
// encoding/json, so their meaning never differs from it.
package payload

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxDepth bounds nesting so a hostile document cannot exhaust the stack.
const maxDepth = 256

// Schema is a compiled set of dotted paths ("pull_request.base.ref") to pick from documents.
// Build it once with Compile and share it; it is read-only afterwards.
type Schema struct {
	root  *node
	paths []string
}

type node struct {
	children map[string]*node
	index    int // position in Schema.paths when a value is wanted here; -1 otherwise
}

// Compile builds a Schema from dotted object paths. Array elements cannot be addressed: pick the
// array itself and decode it with Values.Decode.
func Compile(paths ...string) *Schema {
	s := &Schema{root: &node{index: -1}, paths: paths}
	for i, p := range paths {
		n := s.root
		for _, part := range strings.Split(p, ".") {
			if n.children == nil {
				n.children = map[string]*node{}
			}
			c, ok := n.children[part]
			if !ok {
				c = &node{index: -1}
				n.children[part] = c
			}
			n = c
		}
		n.index = i
	}
	return s
}

// Values holds the raw JSON text found for each path of a Schema, in the Schema's order.
// A path that is absent has a nil value.
type Values struct {
	schema *Schema
	raw    [][]byte
}

// SyntaxError reports where a document stops being valid JSON.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

// Pick validates data and returns the values at the Schema's paths. The returned Values alias data.
func (s *Schema) Pick(data []byte) (Values, error) {
	v := Values{schema: s, raw: make([][]byte, len(s.paths))}
	sc := scanner{data: data, out: v.raw}
	sc.skipSpace()
	if sc.pos >= len(data) {
		return v, sc.fail("empty document")
	}
	if data[sc.pos] != '{' {
		return v, sc.fail("a webhook payload must be a JSON object")
	}
	if err := sc.value(s.root, 0); err != nil {
		return v, err
	}
	sc.skipSpace()
	if sc.pos != len(data) {
		return v, sc.fail("unexpected data after the top-level value")
	}
	return v, nil
}

// Raw returns the JSON text at path, or nil when the document did not have it.
func (v Values) Raw(path string) []byte {
	for i, p := range v.schema.paths {
		if p == path {
			return v.raw[i]
		}
	}
	panic("payload: path not in schema: " + path)
}

// Has reports whether path was present and not null.
func (v Values) Has(path string) bool {
	r := v.Raw(path)
	return r != nil && string(r) != "null"
}

// String returns the string at path; "" when absent or null.
func (v Values) String(path string) (string, error) {
	r := v.Raw(path)
	if r == nil || string(r) == "null" {
		return "", nil
	}
	if r[0] != '"' {
		return "", fmt.Errorf("%s: want a string, got %.20s", path, r)
	}
	// Fast path: no escapes, so the text between the quotes is the value.
	if inner := r[1 : len(r)-1]; !containsByte(inner, '\\') {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// Int returns the integer at path; 0 when absent or null.
func (v Values) Int(path string) (int64, error) {
	r := v.Raw(path)
	if r == nil || string(r) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(r), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want an integer, got %.20s", path, r)
	}
	return n, nil
}

// Bool returns the boolean at path; false when absent or null.
func (v Values) Bool(path string) (bool, error) {
	switch r := v.Raw(path); string(r) {
	case "", "null", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, fmt.Errorf("%s: want a boolean, got %.20s", path, r)
	}
}

// Decode unmarshals the value at path into dst with encoding/json; absent or null leaves dst alone.
func (v Values) Decode(path string, dst any) error {
	r := v.Raw(path)
	if r == nil || string(r) == "null" {
		return nil
	}
	if err := json.Unmarshal(r, dst); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
