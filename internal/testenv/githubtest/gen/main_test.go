package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// description builds a small document of the description's shape holding every listed
// operation, with one chain of references to follow.
func description(t *testing.T) []byte {
	t.Helper()
	paths := map[string]map[string]any{}
	for i, op := range operations {
		method, path, _ := strings.Cut(op, " ")
		o := map[string]any{
			"operationId": "op/" + string(rune('a'+i)),
			"parameters":  []any{map[string]any{"$ref": "#/components/parameters/owner"}, map[string]any{"name": "per_page", "in": "query", "schema": map[string]any{"type": "integer"}}},
			"responses": map[string]any{
				"200": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/top"}}}},
				"202": map[string]any{"$ref": "#/components/responses/accepted"},
				"204": map[string]any{},
				"404": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/error"}}}},
			},
		}
		if method == "POST" {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(method)] = o
	}
	doc := map[string]any{
		"info":  map[string]any{"version": "1.0"},
		"paths": paths,
		"components": map[string]any{
			"parameters": map[string]any{"owner": map[string]any{"name": "owner", "in": "path", "schema": map[string]any{"type": "string"}}},
			"responses":  map[string]any{"accepted": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"type": "object"}}}}},
			"schemas": map[string]any{
				"top":    map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"$ref": "#/components/schemas/middle"}}},
				"middle": map[string]any{"allOf": []any{map[string]any{"$ref": "#/components/schemas/leaf"}}},
				"leaf":   map[string]any{"type": "string"},
				"error":  map[string]any{"type": "object"},
				"unused": map[string]any{"type": "object"},
			},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	spec, license, out := filepath.Join(dir, "spec.json"), filepath.Join(dir, "LICENSE-x"), filepath.Join(dir, "testdata", "subset.json")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, description(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(license, []byte("MIT"), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := run(spec, license, out); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// A second run over a read-only licence copy gives the same bytes.
	if err := run(spec, license, out); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(out)
	if string(first) != string(second) {
		t.Error("two runs wrote different subsets")
	}
	if lic, err := os.ReadFile(filepath.Join(dir, "testdata", "LICENSE-x")); err != nil || string(lic) != "MIT" {
		t.Errorf("licence copy = %q, %v", lic, err)
	}
	var sub Subset
	if err := json.Unmarshal(first, &sub); err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range sub.Schemas {
		names = append(names, n)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "leaf,middle,top" {
		t.Errorf("schemas = %v, want the referenced chain only (no error, no unused)", names)
	}
	if len(sub.Operations) != len(operations) || !slices.IsSortedFunc(sub.Operations, func(a, b Operation) int { return strings.Compare(a.OperationID, b.OperationID) }) {
		t.Errorf("%d operations, sorted: want %d sorted by id", len(sub.Operations), len(operations))
	}
	for _, o := range sub.Operations {
		if len(o.Parameters) != 1 || o.Parameters[0].Name != "owner" {
			t.Errorf("%s: parameters %+v, want the path parameter owner only", o.OperationID, o.Parameters)
		}
		if string(o.Responses["204"]) != "null" || o.Responses["404"] != nil || o.Responses["200"] == nil {
			t.Errorf("%s: responses %v, want 200, 202 and 204 (no body) only", o.OperationID, o.Responses)
		}
		var accepted map[string]any
		if err := json.Unmarshal(o.Responses["202"], &accepted); err != nil || len(accepted) != 1 || accepted["type"] != "object" {
			t.Errorf("%s: 202 %s, want the shared response's schema", o.OperationID, o.Responses["202"])
		}
		if (o.Method == "POST") != (o.Request != nil && o.RequestRequired) {
			t.Errorf("%s %s: request %s required %v", o.Method, o.Path, o.Request, o.RequestRequired)
		}
		if strings.Contains(o.Path, "{base}...{head}") != (o.AliasOf != "") {
			t.Errorf("%s: alias_of %q", o.Path, o.AliasOf)
		}
	}
}

func TestMissingOperation(t *testing.T) {
	var doc document
	if _, err := extract(&doc); err == nil || !strings.Contains(err.Error(), "not in the description") {
		t.Errorf("err = %v, want a missing operation", err)
	}
}

func TestMissingSharedResponse(t *testing.T) {
	var doc document
	if err := json.Unmarshal([]byte(`{"paths": {"/app": {"get": {"operationId": "apps/get-authenticated",
		"responses": {"202": {"$ref": "#/components/responses/gone"}}}}}}`), &doc); err != nil {
		t.Fatal(err)
	}
	saved := operations
	operations = []string{"GET /app"}
	defer func() { operations = saved }()
	if _, err := extract(&doc); err == nil || !strings.Contains(err.Error(), "response #/components/responses/gone is missing") {
		t.Errorf("err = %v, want the missing shared response named", err)
	}
}
