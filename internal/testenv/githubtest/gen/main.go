// Command gen derives the subset of GitHub's REST API description that Stagecoach's GitHub test
// server checks requests and responses against: the operations Stagecoach calls, with their
// path parameters, request body schema and success-response schemas, and every component schema
// those reference, transitively. References stay references: the referenced components are
// copied, not inlined, so the subset reads like the description it came from. The tests read
// only the subset (and the description's licence, copied next to it), never the 13 MB original.
//
//	go run ./internal/testenv/githubtest/gen -spec ../shared/reference/github/rest-api.github.com.json -out internal/testenv/githubtest/testdata/rest-subset.json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// operations are the method and path of every GitHub call Stagecoach makes (git/get-tag peels
// the annotated tags a push names by their tag object). The deprecated compare form is listed
// too: go-github's URL matches it as well as the {basehead} form. The App's hook deliveries and
// git/list-matching-refs are recovery's: the deliveries GitHub failed to make, redelivered, and
// the release tags reconciled with what Stagecoach recorded.
var operations = []string{
	"POST /app/installations/{installation_id}/access_tokens",
	"GET /app",
	"GET /app/installations",
	"GET /repos/{owner}/{repo}/installation",
	"POST /app-manifests/{code}/conversions",
	"GET /rate_limit",
	"POST /repos/{owner}/{repo}/check-runs",
	"PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/check-runs/{check_run_id}",
	"GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
	"POST /repos/{owner}/{repo}/deployments",
	"GET /repos/{owner}/{repo}/deployments",
	"POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
	"POST /repos/{owner}/{repo}/issues",
	"GET /repos/{owner}/{repo}/issues",
	"PATCH /repos/{owner}/{repo}/issues/{issue_number}",
	"GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
	"GET /repos/{owner}/{repo}/issues/{issue_number}",
	"GET /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
	"POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions",
	"GET /repos/{owner}/{repo}/labels/{name}",
	"POST /repos/{owner}/{repo}/labels",
	"POST /repos/{owner}/{repo}/issues/{issue_number}/labels",
	"GET /repos/{owner}/{repo}/git/ref/{ref}",
	"PATCH /repos/{owner}/{repo}/git/refs/{ref}",
	"POST /repos/{owner}/{repo}/git/refs",
	"GET /repos/{owner}/{repo}/git/tags/{tag_sha}",
	"GET /repos/{owner}/{repo}/commits/{ref}",
	"GET /repos/{owner}/{repo}/compare/{basehead}",
	"GET /repos/{owner}/{repo}/compare/{base}...{head}",
	"GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
	"GET /repos/{owner}/{repo}/pulls/{pull_number}",
	"GET /orgs/{org}/teams/{team_slug}/memberships/{username}",
	"GET /repos/{owner}/{repo}/collaborators/{username}/permission",
	// stagecoach doctor: who may push to the stage branches.
	"GET /repos/{owner}/{repo}/rules/branches/{branch}",
	"GET /repos/{owner}/{repo}/rulesets/{ruleset_id}",
	"GET /repos/{owner}/{repo}/branches/{branch}/protection",
	// Sign-in: who the person is, the App's installations they can reach and the repositories
	// they can read in each (with their permissions), and revoking their token at sign-out.
	"GET /user",
	"GET /user/installations",
	"GET /user/installations/{installation_id}/repositories",
	"DELETE /applications/{client_id}/token",
	"GET /app/hook/deliveries",
	"GET /app/hook/deliveries/{delivery_id}",
	"POST /app/hook/deliveries/{delivery_id}/attempts",
	"GET /repos/{owner}/{repo}/git/matching-refs/{ref}",
	// Who moved a guarded stage's branch when its push was never delivered: recovery reads the
	// repository's activity for the ref it found moved.
	"GET /repos/{owner}/{repo}/activity",
	// Repositories' own configuration files: read from the default branch (conditionally, by
	// ETag), and the commit that last changed one, which gets the check run stagecoach/config.
	"GET /repos/{owner}/{repo}/contents/{path}",
	"GET /repos/{owner}/{repo}/commits",
}

// aliases are operations the description keeps apart that GitHub serves as one: the
// {base}...{head} compare form is the older spelling of {basehead} (NOTES.md).
var aliases = map[string]string{
	"GET /repos/{owner}/{repo}/compare/{base}...{head}": "repos/compare-commits-with-basehead",
}

// Parameter is one path parameter of an operation.
type Parameter struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	// MultiSegment marks a parameter whose value may contain "/" (x-multi-segment).
	MultiSegment bool `json:"multi_segment,omitempty"`
}

// Operation is one operation of the subset.
type Operation struct {
	Method          string                     `json:"method"`
	Path            string                     `json:"path"`
	OperationID     string                     `json:"operation_id"`
	Deprecated      bool                       `json:"deprecated,omitempty"`
	AliasOf         string                     `json:"alias_of,omitempty"` // the operation that serves this one
	Parameters      []Parameter                `json:"parameters,omitempty"`
	Request         json.RawMessage            `json:"request,omitempty"` // JSON body schema
	RequestRequired bool                       `json:"request_required,omitempty"`
	Responses       map[string]json.RawMessage `json:"responses"` // success status -> JSON schema, or null for no body
}

// Subset is the generated file.
type Subset struct {
	Source     string                     `json:"source"`
	Operations []Operation                `json:"operations"`
	Schemas    map[string]json.RawMessage `json:"schemas"`
}

type content map[string]struct {
	Schema json.RawMessage `json:"schema"`
}

type rawParameter struct {
	Ref          string          `json:"$ref"`
	Name         string          `json:"name"`
	In           string          `json:"in"`
	Schema       json.RawMessage `json:"schema"`
	MultiSegment bool            `json:"x-multi-segment"`
}

type document struct {
	Info  struct{ Version string } `json:"info"`
	Paths map[string]map[string]struct {
		OperationID string         `json:"operationId"`
		Deprecated  bool           `json:"deprecated"`
		Parameters  []rawParameter `json:"parameters"`
		RequestBody struct {
			Required bool    `json:"required"`
			Content  content `json:"content"`
		} `json:"requestBody"`
		Responses map[string]rawResponse `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas    map[string]json.RawMessage `json:"schemas"`
		Parameters map[string]rawParameter    `json:"parameters"`
		Responses  map[string]rawResponse     `json:"responses"`
	} `json:"components"`
}

// rawResponse is a response of an operation, or a reference to a shared one (apps/redeliver-
// webhook-delivery's 202 is #/components/responses/accepted).
type rawResponse struct {
	Ref     string  `json:"$ref"`
	Content content `json:"content"`
}

func main() {
	spec := flag.String("spec", "../shared/reference/github/rest-api.github.com.json", "GitHub's REST API description")
	out := flag.String("out", "internal/testenv/githubtest/testdata/rest-subset.json", "output file; the licence is copied next to it")
	license := flag.String("license", "", "the description's licence (default: LICENSE-octokit-openapi next to -spec)")
	flag.Parse()
	if *license == "" {
		*license = filepath.Join(filepath.Dir(*spec), "LICENSE-octokit-openapi")
	}
	if err := run(*spec, *license, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(specPath, licensePath, outPath string) error {
	raw, err := os.ReadFile(specPath)
	if err != nil {
		return fmt.Errorf("reading the description: %w", err)
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("decoding %s: %w", specPath, err)
	}
	sub, err := extract(&doc)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(sub, "", " ")
	if err != nil {
		return fmt.Errorf("encoding the subset: %w", err)
	}
	if err := os.WriteFile(outPath, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the subset: %w", err)
	}
	lic, err := os.ReadFile(licensePath)
	if err != nil {
		return fmt.Errorf("reading the licence: %w", err)
	}
	dst := filepath.Join(filepath.Dir(outPath), filepath.Base(licensePath))
	// The copy may be read-only from an earlier run; replace it rather than write through it.
	if err := os.Remove(dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replacing the licence copy: %w", err)
	}
	if err := os.WriteFile(dst, lic, 0o644); err != nil {
		return fmt.Errorf("copying the licence: %w", err)
	}
	return nil
}

// extract picks the operations out of the description, with the components they reference.
func extract(doc *document) (*Subset, error) {
	sub := &Subset{Source: "@octokit/openapi api.github.com " + doc.Info.Version + " (MIT, see LICENSE-octokit-openapi)",
		Schemas: map[string]json.RawMessage{}}
	var pending []json.RawMessage
	for _, op := range operations {
		method, path, _ := strings.Cut(op, " ")
		o, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			return nil, fmt.Errorf("operation %s is not in the description", op)
		}
		out := Operation{Method: method, Path: path, OperationID: o.OperationID, Deprecated: o.Deprecated,
			AliasOf: aliases[op], Responses: map[string]json.RawMessage{}}
		for _, p := range o.Parameters {
			if p.Ref != "" {
				name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
				resolved, ok := doc.Components.Parameters[name]
				if !ok {
					return nil, fmt.Errorf("%s: parameter %s is missing", op, p.Ref)
				}
				p = resolved
			}
			if p.In != "path" {
				continue
			}
			out.Parameters = append(out.Parameters, Parameter{Name: p.Name, Schema: p.Schema, MultiSegment: p.MultiSegment})
			pending = append(pending, p.Schema)
		}
		if c, ok := o.RequestBody.Content["application/json"]; ok {
			out.Request, out.RequestRequired = c.Schema, o.RequestBody.Required
			pending = append(pending, c.Schema)
		}
		for status, r := range o.Responses {
			if !strings.HasPrefix(status, "2") {
				continue
			}
			if r.Ref != "" {
				name := strings.TrimPrefix(r.Ref, "#/components/responses/")
				resolved, ok := doc.Components.Responses[name]
				if !ok {
					return nil, fmt.Errorf("%s: response %s is missing", op, r.Ref)
				}
				r = resolved
			}
			c, ok := r.Content["application/json"]
			if !ok {
				out.Responses[status] = json.RawMessage("null")
				continue
			}
			out.Responses[status] = c.Schema
			pending = append(pending, c.Schema)
		}
		sub.Operations = append(sub.Operations, out)
	}
	for len(pending) > 0 {
		s := pending[0]
		pending = pending[1:]
		names, err := refs(s)
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if _, done := sub.Schemas[name]; done {
				continue
			}
			c, ok := doc.Components.Schemas[name]
			if !ok {
				return nil, fmt.Errorf("component %s is referenced but missing", name)
			}
			sub.Schemas[name] = c
			pending = append(pending, c)
		}
	}
	sort.Slice(sub.Operations, func(i, j int) bool {
		a, b := sub.Operations[i], sub.Operations[j]
		if a.OperationID != b.OperationID {
			return a.OperationID < b.OperationID
		}
		return a.Path < b.Path
	})
	return sub, nil
}

// refs lists the component schemas a schema references directly, sorted.
func refs(schema json.RawMessage) ([]string, error) {
	var v any
	if err := json.Unmarshal(schema, &v); err != nil {
		return nil, fmt.Errorf("decoding a schema: %w", err)
	}
	seen := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			if r, ok := t["$ref"].(string); ok && strings.HasPrefix(r, "#/components/schemas/") {
				seen[strings.TrimPrefix(r, "#/components/schemas/")] = true
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
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
