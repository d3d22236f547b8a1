package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// botocore is where Debian's python3-botocore keeps the service models.
const botocore = "/usr/lib/python3/dist-packages/botocore/data"

// TestCommittedModelsAreCurrent regenerates the models from botocore, when it is installed,
// and compares them with the committed ones.
func TestCommittedModelsAreCurrent(t *testing.T) {
	if _, err := os.Stat(botocore); err != nil {
		t.Skipf("botocore's models are not installed (apt-get install python3-botocore): %v", err)
	}
	out := t.TempDir()
	for name := range services {
		if err := generate(botocore, out, name); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "testdata", "models", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s.json differs from botocore's model: run go generate ./internal/testenv/awstest", name)
		}
	}
}

// TestCommittedModelsAreClosed checks, without botocore, that the committed models hold every
// operation Stagecoach calls and every shape those reference, transitively, and no other shape.
func TestCommittedModelsAreClosed(t *testing.T) {
	for name, svc := range services {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "models", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var m Model
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		reached := map[string]bool{}
		var pending []string
		for _, op := range svc.ops {
			o, ok := m.Operations[op]
			if !ok {
				t.Errorf("%s: operation %s is missing", name, op)
				continue
			}
			pending = append(pending, refs(map[string]any{"members": map[string]any{"in": o["input"], "out": o["output"]}})...)
			errs, _ := o["errors"].([]any)
			for _, e := range errs {
				pending = append(pending, e.(map[string]any)["shape"].(string))
			}
		}
		for len(pending) > 0 {
			s := pending[0]
			pending = pending[1:]
			if reached[s] {
				continue
			}
			reached[s] = true
			shape, ok := m.Shapes[s]
			if !ok {
				t.Errorf("%s: shape %s is referenced but missing", name, s)
				continue
			}
			if _, ok := shape["documentation"]; ok {
				t.Errorf("%s: shape %s kept its documentation", name, s)
			}
			pending = append(pending, refs(shape)...)
		}
		var extra []string
		for s := range m.Shapes {
			if !reached[s] {
				extra = append(extra, s)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s: shapes no operation reaches: %v", name, extra)
		}
	}
}
