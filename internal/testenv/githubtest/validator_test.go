package githubtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// subset loads the embedded description subset once per test.
func subset(t *testing.T) ([]*operation, *validator) {
	t.Helper()
	ops, v, err := loadSubset(subsetJSON)
	if err != nil {
		t.Fatal(err)
	}
	return ops, v
}

func opByID(t *testing.T, ops []*operation, id string) *operation {
	t.Helper()
	for _, o := range ops {
		if o.id == id {
			return o
		}
	}
	t.Fatalf("operation %s is not in the subset", id)
	return nil
}

func TestRequestBodies(t *testing.T) {
	ops, v := subset(t)
	s := &Server{ops: ops, v: v}
	tests := []struct {
		name, op, body string
		problem        string // "" when the body is valid; else a part of the first problem
		note           string // a part of a note the body must cause, if any
	}{
		{"check run created", "checks/create", `{"name":"stagecoach/test","head_sha":"abc","status":"queued"}`, "", ""},
		{"check run without head_sha", "checks/create", `{"name":"x"}`, `"head_sha" is required`, ""},
		{"check run name not a string", "checks/create", `{"name":7,"head_sha":"a"}`, "want string", ""},
		{"check run status unknown", "checks/create", `{"name":"x","head_sha":"a","status":"done"}`, `"done" is not one of`, ""},
		{"check run completed with conclusion", "checks/update", `{"name":"x","status":"completed","conclusion":"success"}`, "", ""},
		{"check run completed without conclusion", "checks/update", `{"name":"x","status":"completed"}`, "matches none of anyOf", ""},
		{"check run in progress", "checks/update", `{"name":"x","status":"in_progress"}`, "", ""},
		{"check run conclusion unknown", "checks/update", `{"name":"x","conclusion":"bogus"}`, `"bogus" is not one of`, ""},
		{"check run output without summary", "checks/update", `{"name":"x","output":{"title":"t"}}`, `"summary" is required`, ""},
		{"check run action", "checks/update", `{"name":"x","actions":[{"label":"Promote","description":"to prod","identifier":"promote"}]}`, "", ""},
		{"check run action id too long", "checks/update", `{"name":"x","actions":[{"label":"P","description":"d","identifier":"` + strings.Repeat("x", 21) + `"}]}`, "longer than 20", ""},
		{"check run unknown key is a note", "checks/update", `{"name":"x","colour":"red"}`, "", `"colour" is not in the description`},
		{"labels as an object", "issues/add-labels", `{"labels":["deployed"]}`, "", ""},
		{"labels as a bare array (go-github)", "issues/add-labels", `["deployed","test"]`, "", ""},
		{"labels empty", "issues/add-labels", `{"labels":[]}`, "fewer than 1 items", ""},
		{"labels of the wrong type", "issues/add-labels", `[1]`, "matches none of oneOf", ""},
		{"access token null body (ghinstallation)", "apps/create-installation-access-token", `null`, "", ""},
		{"access token no body", "apps/create-installation-access-token", ``, "", ""},
		{"access token for repositories", "apps/create-installation-access-token", `{"repositories":["hello"]}`, "", ""},
		{"access token bad repository ids", "apps/create-installation-access-token", `{"repository_ids":["x"]}`, "want integer", ""},
		{"check run needs a body", "checks/create", ``, "needs a JSON body", ""},
		{"null where a body is required", "checks/create", `null`, "null is not allowed", ""},
		{"not JSON", "checks/create", `{"name":`, "not JSON", ""},
		{"body on a GET", "checks/get", `{}`, "takes no JSON body", ""},
		{"deployment", "repos/create-deployment", `{"ref":"main","auto_merge":false,"required_contexts":[],"description":null}`, "", ""},
		{"deployment payload neither object nor string", "repos/create-deployment", `{"ref":"main","payload":3}`, "matches none of oneOf", ""},
		{"issue title as integer", "issues/create", `{"title":42}`, "", ""},
		{"issue field value with a key the description forbids", "issues/create", `{"title":"t","issue_field_values":[{"field_id":1,"value":"x","extra":1}]}`, `unknown property "extra"`, ""},
		{"ref update", "git/update-ref", `{"sha":"abc","force":true}`, "", ""},
		{"ref update force not boolean", "git/update-ref", `{"sha":"abc","force":"yes"}`, "want boolean", ""},
		{"reaction unknown", "reactions/create-for-issue-comment", `{"content":"thumbsup"}`, "is not one of", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs, notes := s.checkBody(opByID(t, ops, tt.op), []byte(tt.body))
			switch {
			case tt.problem == "" && len(probs) > 0:
				t.Errorf("problems %q, want none", probs)
			case tt.problem != "" && (len(probs) == 0 || !strings.Contains(strings.Join(probs, "\n"), tt.problem)):
				t.Errorf("problems %q, want one with %q", probs, tt.problem)
			}
			if tt.note != "" && !strings.Contains(strings.Join(notes, "\n"), tt.note) {
				t.Errorf("notes %q, want one with %q", notes, tt.note)
			}
		})
	}
}

// TestSchemaKeywords checks the keywords the description uses that the operation bodies
// above do not reach, on small schemas of the description's form.
func TestSchemaKeywords(t *testing.T) {
	v := &validator{}
	if err := json.Unmarshal([]byte(`{
		"name":  {"type": "string", "minLength": 1, "maxLength": 3},
		"loop":  {"$ref": "#/components/schemas/loop"},
		"count": {"type": "integer", "minimum": 1, "maximum": 10}}`), &v.schemas); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, schema, value string
		ok                  bool
	}{
		{"type array allows null", `{"type":["string","null"]}`, `null`, true},
		{"type array allows string", `{"type":["string","null"]}`, `"x"`, true},
		{"type array refuses number", `{"type":["string","null"]}`, `1`, false},
		{"nullable", `{"type":"string","nullable":true}`, `null`, true},
		{"not nullable", `{"type":"string"}`, `null`, false},
		{"integer", `{"type":"integer"}`, `1.5`, false},
		{"number", `{"type":"number"}`, `1.5`, true},
		{"ref within bounds", `{"$ref":"#/components/schemas/count"}`, `10`, true},
		{"ref above maximum", `{"$ref":"#/components/schemas/count"}`, `11`, false},
		{"ref below minimum", `{"$ref":"#/components/schemas/count"}`, `0`, false},
		{"ref missing", `{"$ref":"#/components/schemas/nope"}`, `1`, false},
		{"ref loop", `{"$ref":"#/components/schemas/loop"}`, `1`, false},
		{"minLength", `{"$ref":"#/components/schemas/name"}`, `""`, false},
		{"allOf both", `{"allOf":[{"$ref":"#/components/schemas/name"},{"enum":["ab","abcd"]}]}`, `"ab"`, true},
		{"allOf one fails", `{"allOf":[{"$ref":"#/components/schemas/name"},{"enum":["ab","abcd"]}]}`, `"abcd"`, false},
		{"oneOf two match", `{"oneOf":[{"type":"integer"},{"type":"number"}]}`, `1`, false},
		{"oneOf one matches", `{"oneOf":[{"type":"integer"},{"type":"number"}]}`, `1.5`, true},
		{"anyOf two match", `{"anyOf":[{"type":"integer"},{"type":"number"}]}`, `1`, true},
		{"required", `{"type":"object","required":["a"]}`, `{}`, false},
		{"additionalProperties false", `{"type":"object","properties":{"a":{}},"additionalProperties":false}`, `{"a":1,"b":2}`, false},
		{"additionalProperties schema", `{"type":"object","additionalProperties":{"type":"string"}}`, `{"b":2}`, false},
		{"unknown keys allowed", `{"type":"object","properties":{"a":{}}}`, `{"a":1,"b":2}`, true},
		{"items", `{"type":"array","items":{"type":"string"},"maxItems":2}`, `["a",1]`, false},
		{"maxItems", `{"type":"array","maxItems":1}`, `[1,2]`, false},
		{"enum", `{"enum":["a"]}`, `"b"`, false},
		{"enum of numbers", `{"enum":[1,2]}`, `2`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var schema map[string]any
			var value any
			if err := json.Unmarshal([]byte(tt.schema), &schema); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.value), &value); err != nil {
				t.Fatal(err)
			}
			if probs := v.validate(schema, value, "v"); (len(probs) == 0) != tt.ok {
				t.Errorf("problems %q, want ok=%v", probs, tt.ok)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	ops, v := subset(t)
	tests := []struct {
		method, path string
		op           string // "" when nothing may match
		params       map[string]string
	}{
		{"GET", "/repos/acme/app/git/ref/heads/feature/x", "git/get-ref", map[string]string{"ref": "heads/feature/x"}},
		{"PATCH", "/repos/acme/app/git/refs/heads/release/1.2", "git/update-ref", map[string]string{"ref": "heads/release/1.2"}},
		{"POST", "/repos/acme/app/git/refs", "git/create-ref", nil},
		{"GET", "/repos/acme/app/commits/abc123/pulls", "repos/list-pull-requests-associated-with-commit", map[string]string{"commit_sha": "abc123"}},
		{"GET", "/repos/acme/app/commits/feature/x", "repos/get-commit", map[string]string{"ref": "feature/x"}},
		{"GET", "/repos/acme/app/compare/main...feature%2Fx", "repos/compare-commits-with-basehead", map[string]string{"basehead": "main...feature/x"}},
		{"GET", "/repos/acme/app/compare/main...feature/x", "repos/compare-commits-with-basehead", map[string]string{"basehead": "main...feature/x"}},
		{"GET", "/repos/acme/app/labels/needs%2Fdeploy", "issues/get-label", map[string]string{"name": "needs/deploy"}},
		// go-github does not escape a label name; one with a slash cannot reach GitHub's route.
		{"GET", "/repos/acme/app/labels/a/b", "", nil},
		{"GET", "/repos/acme/app/check-runs/17", "checks/get", map[string]string{"check_run_id": "17"}},
		{"GET", "/repos/acme/app/check-runs/abc", "", nil},
		{"DELETE", "/repos/acme/app/check-runs/1", "", nil},
		{"PATCH", "/repos/acme/app/issues/comments/5", "issues/update-comment", map[string]string{"comment_id": "5"}},
		{"PATCH", "/repos/acme/app/issues/5", "issues/update", map[string]string{"issue_number": "5"}},
		{"POST", "/repos/acme/app/issues/comments/5/reactions", "reactions/create-for-issue-comment", nil},
		{"GET", "/repos/acme/app/issues/5/comments", "issues/list-comments", nil},
		{"POST", "/app/installations/3/access_tokens", "apps/create-installation-access-token", map[string]string{"installation_id": "3"}},
		{"GET", "/app", "apps/get-authenticated", nil},
		{"GET", "/repos/acme/app/frobs", "", nil},
		{"GET", "/repos/acme//check-runs/1", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			op, params, _ := match(ops, v, tt.method, tt.path)
			if tt.op == "" {
				if op != nil {
					t.Fatalf("matched %s, want no operation", op.id)
				}
				return
			}
			if op == nil || op.id != tt.op {
				t.Fatalf("matched %v, want %s", op, tt.op)
			}
			for k, want := range tt.params {
				if params[k] != want {
					t.Errorf("%s = %q, want %q", k, params[k], want)
				}
			}
		})
	}
}

// TestDeprecatedCompare matches the deprecated compare template by itself: the {basehead} form
// wins when both match, and the older one is served by the same handler.
func TestDeprecatedCompare(t *testing.T) {
	ops, _ := subset(t)
	op := opByID(t, ops, "repos/compare-commits")
	if op.aliasOf != "repos/compare-commits-with-basehead" {
		t.Errorf("the {base}...{head} form is an alias of %q", op.aliasOf)
	}
	params, ok := matchSegs(op.segs, strings.Split("repos/acme/app/compare/v1.0...main", "/"))
	if !ok || params["base"] != "v1.0" || params["head"] != "main" {
		t.Fatalf("params = %v, %v", params, ok)
	}
	if _, ok := matchSegs(op.segs, strings.Split("repos/acme/app/compare/main", "/")); ok {
		t.Error("a compare path without ... matched the {base}...{head} form")
	}
	idx := slices.Index(ops, op)
	if basehead := slices.Index(ops, opByID(t, ops, "repos/compare-commits-with-basehead")); basehead > idx {
		t.Error("the deprecated form is tried before the current one")
	}
}

// TestEveryOperationHasAHandler guards against adding an operation to ./gen without serving it.
func TestEveryOperationHasAHandler(t *testing.T) {
	ops, v := subset(t)
	s := &Server{ops: ops, v: v}
	known := s.routes()
	for _, op := range ops {
		if known[op.id] == nil && known[op.aliasOf] == nil {
			t.Errorf("%s is in the subset but not served", op.id)
		}
	}
}
