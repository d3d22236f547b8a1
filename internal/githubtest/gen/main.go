// Command gen derives the subset of GitHub's REST API description that Stagecoach's GitHub test
// server checks requests and responses against: the operations Stagecoach calls, with their
// request and success-response schemas and every component schema those reference. The tests
// read only the subset, so they never need the full 13 MB description.
//
//	go run ./internal/githubtest/gen -spec ../shared/reference/github/rest-api.github.com.json -out internal/githubtest/testdata/rest-subset.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// operations are the method and path of every GitHub call Stagecoach makes.
var operations = []string{
	"POST /app/installations/{installation_id}/access_tokens",
	"GET /app",
	"GET /repos/{owner}/{repo}/installation",
	"POST /repos/{owner}/{repo}/check-runs",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"POST /repos/{owner}/{repo}/deployments",
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"GET /repos/{owner}/{repo}/compare/{basehead}",
	"GET /rate_limit",
	"POST /app-manifests/{code}/conversions",
	"GET /orgs/{org}/teams/{team_slug}/memberships/{username}",
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission",
}

// Operation is one operation of the subset.
type Operation struct {
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	OperationID string          `json:"operation_id"`
	Request     json.RawMessage `json:"request,omitempty"`   // JSON body schema
	Responses   map[string]any  `json:"responses,omitempty"` // status -> JSON schema, success statuses only
}

// Subset is the generated file.
type Subset struct {
	Source     string                     `json:"source"`
	Operations []Operation                `json:"operations"`
	Schemas    map[string]json.RawMessage `json:"schemas"`
}

func main() {
	spec := flag.String("spec", "../shared/reference/github/rest-api.github.com.json", "GitHub's REST API description")
	out := flag.String("out", "internal/githubtest/testdata/rest-subset.json", "output file")
	flag.Parse()
	if err := run(*spec, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(specPath, outPath string) error {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var doc struct {
		Info  struct{ Version string } `json:"info"`
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
			RequestBody struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("reading %s: %w", specPath, err)
	}
	sub := Subset{Source: "@octokit/openapi api.github.com " + doc.Info.Version + " (MIT)", Schemas: map[string]json.RawMessage{}}
	var pending []json.RawMessage
	for _, op := range operations {
		method, path, _ := strings.Cut(op, " ")
		o, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			return fmt.Errorf("operation %s not in the description", op)
		}
		out := Operation{Method: method, Path: path, OperationID: o.OperationID, Responses: map[string]any{}}
		if c, ok := o.RequestBody.Content["application/json"]; ok {
			out.Request = c.Schema
			pending = append(pending, c.Schema)
		}
		for status, r := range o.Responses {
			if !strings.HasPrefix(status, "2") {
				continue
			}
			if c, ok := r.Content["application/json"]; ok {
				out.Responses[status] = c.Schema
				pending = append(pending, c.Schema)
			} else {
				out.Responses[status] = nil
			}
		}
		sub.Operations = append(sub.Operations, out)
	}
	// Copy every component schema referenced, transitively.
	for len(pending) > 0 {
		s := pending[0]
		pending = pending[1:]
		for _, name := range refs(s) {
			if _, done := sub.Schemas[name]; done {
				continue
			}
			c, ok := doc.Components.Schemas[name]
			if !ok {
				return fmt.Errorf("component %s is referenced but missing", name)
			}
			sub.Schemas[name] = c
			pending = append(pending, c)
		}
	}
	sort.Slice(sub.Operations, func(i, j int) bool { return sub.Operations[i].OperationID < sub.Operations[j].OperationID })
	b, err := json.MarshalIndent(sub, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(outPath, append(b, '\n'), 0o644)
}

// refs lists the component schemas a schema references directly.
func refs(schema json.RawMessage) []string {
	var v any
	if err := json.Unmarshal(schema, &v); err != nil {
		return nil
	}
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			if r, ok := t["$ref"].(string); ok && strings.HasPrefix(r, "#/components/schemas/") {
				out = append(out, strings.TrimPrefix(r, "#/components/schemas/"))
			}
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	return out
}
