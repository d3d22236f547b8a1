package doctor

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// manifest is what app.yml asks of GitHub.
type manifest struct {
	Permissions map[string]string `yaml:"default_permissions"`
	Events      []string          `yaml:"default_events"`
}

func parseManifest(b []byte) (manifest, error) {
	var m manifest
	if err := yaml.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("reading the App manifest: %w", err)
	}
	if len(m.Permissions) == 0 {
		return m, fmt.Errorf("the App manifest has no default_permissions")
	}
	return m, nil
}

// level orders permission levels; an unknown level is none.
func level(s string) int {
	switch s {
	case "read":
		return 1
	case "write":
		return 2
	case "admin":
		return 3
	}
	return 0
}

// comparePermissions says what has falls short of want (missing or too low) and what it grants
// beyond want, each as "name: level" sorted by name.
func comparePermissions(want, has map[string]string) (short, extra []string) {
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if level(has[name]) < level(want[name]) {
			got := has[name]
			if got == "" {
				got = "none"
			}
			short = append(short, fmt.Sprintf("%s: %s (has %s)", name, want[name], got))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(has)) {
		if level(has[name]) > level(want[name]) {
			extra = append(extra, name+": "+has[name])
		}
	}
	return short, extra
}

// listPermissions renders a permission map as "name: level, ..." sorted by name.
func listPermissions(p map[string]string) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(p)) {
		out = append(out, name+": "+p[name])
	}
	return strings.Join(out, ", ")
}
