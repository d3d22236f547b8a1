// Command gen derives, from AWS's own service models (botocore's service-2.json, shipped by
// Debian's python3-botocore), the operations Stagecoach calls and every shape they reference,
// without documentation, into small files the AWS test servers validate against. Tests read only
// these files, so they never need botocore installed.
//
//	apt-get install python3-botocore
//	go run ./internal/testenv/awstest/gen -out internal/testenv/awstest/testdata/models
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// services lists, per service, its model version and the operations Stagecoach calls.
var services = map[string]struct {
	version string
	ops     []string
}{
	// BatchGetProjects and DescribeRepositories: stagecoach doctor checks the projects and
	// repositories exist.
	"codebuild":      {"2016-10-06", []string{"StartBuild", "BatchGetBuilds", "StopBuild", "ListBuildsForProject", "BatchGetProjects"}},
	"secretsmanager": {"2017-10-17", []string{"DescribeSecret"}},
	// BatchGetImage to PutImage: artifact: promote copies an image's manifest and the layers the
	// stage's registry lacks into it.
	"ecr": {"2015-09-21", []string{"DescribeImages", "DescribeRepositories", "BatchGetImage", "BatchCheckLayerAvailability",
		"GetDownloadUrlForLayer", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload", "PutImage"}},
	"sts": {"2011-06-15", []string{"AssumeRole", "GetCallerIdentity"}},
}

// Model is one generated file.
type Model struct {
	Source     string                    `json:"source"`
	Metadata   map[string]any            `json:"metadata"`
	Operations map[string]map[string]any `json:"operations"`
	Shapes     map[string]map[string]any `json:"shapes"`
}

func main() {
	models := flag.String("models", "/usr/lib/python3/dist-packages/botocore/data", "botocore's data directory")
	out := flag.String("out", "internal/testenv/awstest/testdata/models", "output directory")
	flag.Parse()
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := generate(*models, *out, name); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

func generate(dir, out, name string) error {
	svc := services[name]
	path := filepath.Join(dir, name, svc.version, "service-2.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading %s's model: %w", name, err)
	}
	var full struct {
		Metadata   map[string]any            `json:"metadata"`
		Operations map[string]map[string]any `json:"operations"`
		Shapes     map[string]map[string]any `json:"shapes"`
	}
	if err := json.Unmarshal(raw, &full); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	m := Model{Source: "botocore " + name + " " + svc.version + " (Apache-2.0)", Metadata: full.Metadata,
		Operations: map[string]map[string]any{}, Shapes: map[string]map[string]any{}}
	var pending []string
	for _, op := range svc.ops {
		o, ok := full.Operations[op]
		if !ok {
			return fmt.Errorf("%s has no operation %s", name, op)
		}
		o = strip(o).(map[string]any)
		m.Operations[op] = o
		for _, k := range []string{"input", "output"} {
			if ref, ok := o[k].(map[string]any); ok {
				pending = append(pending, ref["shape"].(string))
			}
		}
		if errs, ok := o["errors"].([]any); ok {
			for _, e := range errs {
				pending = append(pending, e.(map[string]any)["shape"].(string))
			}
		}
	}
	for len(pending) > 0 {
		s := pending[0]
		pending = pending[1:]
		if _, done := m.Shapes[s]; done {
			continue
		}
		shape, ok := full.Shapes[s]
		if !ok {
			return fmt.Errorf("%s: shape %s missing", name, s)
		}
		shape = strip(shape).(map[string]any)
		m.Shapes[s] = shape
		pending = append(pending, refs(shape)...)
	}
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(out, name+".json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// strip removes documentation, which is most of a model's size.
func strip(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if k == "documentation" || k == "documentationUrl" {
				continue
			}
			out[k] = strip(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = strip(x)
		}
		return out
	}
	return v
}

// refs lists the shapes a shape refers to.
func refs(shape map[string]any) []string {
	var out []string
	add := func(v any) {
		if r, ok := v.(map[string]any); ok {
			if s, ok := r["shape"].(string); ok {
				out = append(out, s)
			}
		}
	}
	if members, ok := shape["members"].(map[string]any); ok {
		for _, m := range members {
			add(m)
		}
	}
	add(shape["member"])
	add(shape["key"])
	add(shape["value"])
	return out
}
