package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	schema := Compile("action", "pull_request.merged", "pull_request.base.ref", "number", "missing.deep", "list")
	tests := []struct {
		name string
		doc  string
		want map[string]string // path -> raw JSON ("" = absent)
	}{
		{"nested", `{"action":"closed","number":7,"pull_request":{"merged":true,"base":{"ref":"master"}}}`,
			map[string]string{"action": `"closed"`, "number": "7", "pull_request.merged": "true", "pull_request.base.ref": `"master"`}},
		{"absent", `{"other":{"action":"x"}}`, map[string]string{}},
		{"duplicate key, last wins", `{"action":"a","action":"b"}`, map[string]string{"action": `"b"`}},
		{"escaped key", `{"\u0061ction":"x"}`, map[string]string{"action": `"x"`}},
		{"whole array", `{"list":[1,{"a":[]},"s"]}`, map[string]string{"list": `[1,{"a":[]},"s"]`}},
		{"not an object at a wanted parent", `{"pull_request":[{"merged":true}]}`, map[string]string{}},
		{"whitespace", " {\n\t\"action\" : \"opened\" \r\n} ", map[string]string{"action": `"opened"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := schema.Pick([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Pick: %v", err)
			}
			for _, p := range schema.paths {
				if got, want := string(v.Raw(p)), tt.want[p]; got != want {
					t.Errorf("%s = %q, want %q", p, got, want)
				}
			}
		})
	}
}

func TestPickRejects(t *testing.T) {
	schema := Compile("a")
	for _, doc := range []string{
		``, `   `, `[]`, `"str"`, `{`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `{"a":01}`, `{"a":1.}`,
		`{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":1}x`,
		`{"a":[1,]}`, `{"a":"unterminated}`, strings.Repeat("[", 300),
		`{"a":` + strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2) + `}`,
	} {
		t.Run(doc, func(t *testing.T) {
			_, err := schema.Pick([]byte(doc))
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Pick(%q) = %v, want a *SyntaxError", doc, err)
			}
		})
	}
}

func TestTypedAccessors(t *testing.T) {
	schema := Compile("s", "esc", "n", "b", "null", "obj", "absent")
	v, err := schema.Pick([]byte(`{"s":"plain","esc":"a\"b\u00e9","n":-42,"b":true,"null":null,"obj":{"x":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := v.String("s"); s != "plain" {
		t.Errorf("String(s) = %q", s)
	}
	if s, _ := v.String("esc"); s != "a\"bé" {
		t.Errorf("String(esc) = %q", s)
	}
	if n, _ := v.Int("n"); n != -42 {
		t.Errorf("Int(n) = %d", n)
	}
	if b, _ := v.Bool("b"); !b {
		t.Error("Bool(b) = false")
	}
	if v.Has("null") || v.Has("absent") || !v.Has("obj") {
		t.Error("Has is wrong for null/absent/obj")
	}
	var obj struct{ X []int }
	if err := v.Decode("obj", &obj); err != nil || !reflect.DeepEqual(obj.X, []int{1, 2}) {
		t.Errorf("Decode(obj) = %v, %v", obj, err)
	}
	if _, err := v.Int("s"); err == nil {
		t.Error("Int on a string did not fail")
	}
	if _, err := v.Bool("n"); err == nil {
		t.Error("Bool on a number did not fail")
	}
	if _, err := v.String("n"); err == nil {
		t.Error("String on a number did not fail")
	}
}

// TestFixturesAgreeWithEncodingJSON checks every real GitHub payload in the handlers' testdata:
// each picked value equals what encoding/json finds at the same path.
func TestFixturesAgreeWithEncodingJSON(t *testing.T) {
	files, _ := filepath.Glob("../../handlers/testdata/*.json")
	if len(files) == 0 {
		t.Fatal("no fixtures found in handlers/testdata")
	}
	paths := []string{"action", "ref", "after", "repository.full_name", "installation.id", "sender.login",
		"pull_request.merged", "pull_request.merge_commit_sha", "pull_request.base.ref", "comment.body", "check_run.id"}
	schema := Compile(paths...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v, err := schema.Pick(data)
			if err != nil {
				t.Fatalf("Pick: %v", err)
			}
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				want, found := lookup(doc, p)
				assertSame(t, p, v.Raw(p), want, found)
			}
		})
	}
}

func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func assertSame(t *testing.T, path string, raw []byte, want any, found bool) {
	t.Helper()
	if !found {
		if raw != nil {
			t.Errorf("%s: picked %q, encoding/json finds nothing", path, raw)
		}
		return
	}
	if raw == nil {
		t.Errorf("%s: picked nothing, encoding/json finds %v", path, want)
		return
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Errorf("%s: picked text %q does not decode: %v", path, raw, err)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: picked %v, encoding/json finds %v", path, got, want)
	}
}

// FuzzPick checks the scanner against encoding/json on arbitrary input: the same documents are
// valid, and every picked value is the one encoding/json sees.
func FuzzPick(f *testing.F) {
	f.Add([]byte(`{"a":{"b":"c"},"d":[1,2.5e3,true,null]}`))
	f.Add([]byte(`{"a":"\u00e9\n","a":{"b":-0.1}}`))
	f.Add([]byte(`{"a":{"b":{"c":1}}}`))
	if data, err := os.ReadFile("../../handlers/testdata/push.json"); err == nil {
		f.Add(data)
	}
	schema := Compile("a", "a.b", "d", "ref", "repository.full_name")
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := schema.Pick(data)
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		isObject := len(trimmed) > 0 && trimmed[0] == '{'
		if valid := json.Valid(data) && isObject; valid != (err == nil) {
			t.Fatalf("json.Valid&&object = %v but Pick error = %v for %q", valid, err, data)
		}
		if err != nil {
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			// Invalid UTF-8 is accepted by both; anything else is a disagreement.
			t.Fatalf("encoding/json rejects a document Pick accepted: %v", err)
		}
		for _, p := range []string{"a", "d", "ref", "repository.full_name"} {
			got, found := lookup(doc, p)
			assertSame(t, p, v.Raw(p), got, found)
		}
	})
}

func BenchmarkPick(b *testing.B) {
	data, err := os.ReadFile("../../handlers/testdata/pull_request_closed_merged.json")
	if err != nil {
		b.Fatal(err)
	}
	schema := Compile("action", "number", "pull_request.merged", "pull_request.merge_commit_sha",
		"pull_request.base.ref", "repository.full_name", "installation.id", "sender.login")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.Pick(data); err != nil {
			b.Fatal(err)
		}
	}
}
