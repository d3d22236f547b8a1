package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// repoFile is what a repository's own file holds: some of its apps' keys.
type repoFile struct {
	Apps []App `yaml:"apps"`
}

// ParseRepoFile reads repository repo's own file (RepoFilePath; file names it in problems)
// against c, the server's configuration, and returns repo's effective apps: the server file's
// apps of repo, with the keys the file sets in place of theirs. The file may only name apps the
// server's file builds from repo, and set only the keys their allowed_overrides allow; anything
// else makes the whole file Problems, every one at once, each `file:line: field: message`. An
// empty file (or none: data nil) leaves the server's apps as they are.
func (c *Config) ParseRepoFile(repo, file string, data []byte) ([]App, error) {
	served := cloneApps(c.serverApps(repo))
	if len(data) > MaxRepoFileBytes {
		return nil, Problems{{File: file, Message: fmt.Sprintf("the file has %d bytes; at most %d are read", len(data), MaxRepoFileBytes)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, Problems{syntaxProblem(file, data, err)}
	}
	if len(doc.Content) == 0 {
		return served, nil
	}
	root := doc.Content[0]
	w := newTree(file)
	ft := reflect.TypeFor[repoFile]()
	if w.expect(root, yaml.MappingNode, ft, "") {
		w.mapping(root, "", func(key *yaml.Node) (reflect.Type, bool) {
			if f, ok := yamlFields(ft)[key.Value]; ok {
				return f.Type, true
			}
			why, ok := serverOnly[key.Value]
			if _, server := yamlFields(reflect.TypeFor[Config]())[key.Value]; server && !ok {
				why, ok = "it is the server's", true
			}
			if ok {
				w.add(key.Line, key.Value, "only the server's configuration sets this: %s", why)
				return nil, false
			}
			msg := fmt.Sprintf("unknown field %q: a repository's file holds only apps", key.Value)
			if s := closest(key.Value, ft); s != "" {
				msg = fmt.Sprintf("unknown field %q (did you mean %q?)", key.Value, s)
			}
			w.add(key.Line, "", "%s", msg)
			return nil, false
		})
	}
	var rf repoFile
	probs, ok := w.decode(root, &rf)
	if !ok {
		return nil, probs
	}
	rc := repoCheck{c: c, repo: repo, w: w, probs: probs}
	byName := map[string]App{}
	seen := map[string]int{}
	for j, fa := range rf.Apps {
		p := fmt.Sprintf("apps[%d]", j)
		sa := rc.app(p, fa.Name, seen, j)
		if sa == nil {
			continue
		}
		allowed := rc.allowedKeys(p, sa)
		m := mergeApp(*sa, fa, allowed)
		rc.validate(p, m, sa)
		byName[m.Name] = m
	}
	if len(rc.probs) > 0 {
		return nil, rc.probs
	}
	for i, a := range served {
		if m, ok := byName[a.Name]; ok {
			served[i] = m
		}
	}
	return served, nil
}

// serverApps are the server file's apps built from repo.
func (c *Config) serverApps(repo string) []App {
	var out []App
	for _, a := range c.Apps {
		if strings.EqualFold(a.Repo, repo) {
			out = append(out, a)
		}
	}
	return out
}

// repoCheck gathers the problems of one repository's file.
type repoCheck struct {
	c     *Config
	repo  string
	w     *tree
	probs Problems
}

func (rc *repoCheck) add(field, format string, args ...any) {
	rc.probs = append(rc.probs, Problem{File: rc.w.file, Line: lineOf(rc.w.lines, field), Field: field, Message: fmt.Sprintf(format, args...)})
}

// app returns the server's app the file's app at p names, or nil (with the problem) when the
// name is not one of repo's apps: a repository configures only its own apps, never adds one and
// never touches another repository's.
func (rc *repoCheck) app(p, name string, seen map[string]int, j int) *App {
	var own []string
	for i := range rc.c.Apps {
		a := &rc.c.Apps[i]
		if strings.EqualFold(a.Repo, rc.repo) {
			own = append(own, a.Name)
		}
	}
	list := strings.Join(own, ", ")
	if list == "" {
		list = "none"
	}
	if name == "" {
		rc.add(p+".name", "required: which of %s's apps this configures (%s)", rc.repo, list)
		return nil
	}
	if first, dup := seen[name]; dup {
		rc.add(p+".name", "app %q is already configured at apps[%d]", name, first)
		return nil
	}
	seen[name] = j
	for i := range rc.c.Apps {
		a := &rc.c.Apps[i]
		switch {
		case a.Name != name:
		case strings.EqualFold(a.Repo, rc.repo):
			return a
		default:
			rc.add(p+".name", "app %q is built from %s, not %s: a repository's file configures only its own apps", name, a.Repo, rc.repo)
			return nil
		}
	}
	rc.add(p+".name", "no app %q is built from %s (the server's configuration lists: %s); a new app is the operators' to add", name, rc.repo, list)
	return nil
}

// allowedKeys checks every key the file sets for the app at p against what the server allows
// its repository (sa's overrides), reports each key it may not set once (not the keys under
// it), and returns the keys of the app it may set, list positions left out.
func (rc *repoCheck) allowedKeys(p string, sa *App) map[string]bool {
	type key struct {
		path, rel string
		line      int
	}
	var keys []key
	for path, line := range rc.w.lines {
		if rest, ok := strings.CutPrefix(path, p+"."); ok {
			keys = append(keys, key{path, listIndex.ReplaceAllString(rest, ""), line})
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.line != b.line {
			return a.line - b.line
		}
		return len(a.path) - len(b.path)
	})
	overrides := rc.c.Overrides(sa)
	allowed, refused := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		if k.rel == "name" || under(k.rel, refused) {
			continue
		}
		why := rc.refusal(k.rel, sa, overrides)
		if why == "" {
			allowed[k.rel] = true
			continue
		}
		refused[k.rel] = true
		rc.probs = append(rc.probs, Problem{File: rc.w.file, Line: k.line, Field: p + "." + strings.TrimPrefix(k.path, p+"."), Message: why})
	}
	return allowed
}

// refusal says why the file may not set rel (a key of app sa, list positions left out), or ""
// when it may: a key an override covers, or a mapping on the way to one.
func (rc *repoCheck) refusal(rel string, sa *App, overrides []string) string {
	if why, never := neverOverridable[rel]; never {
		return "only the server's configuration sets this: " + why
	}
	for _, o := range overrides {
		if allows(o, rel) {
			return ""
		}
	}
	parts := strings.Split(rel, ".")
	if len(parts) == 2 && parts[0] == "stages" {
		if _, ok := sa.Stages[parts[1]]; !ok {
			return fmt.Sprintf("app %s does not deploy to %s in the server's configuration, and adding a stage needs stages.%s (or stages.*) in its allowed_overrides",
				sa.Name, parts[1], parts[1])
		}
	}
	for _, o := range overrides {
		if holds(rel, o) {
			return "" // a mapping holding keys the file may set
		}
	}
	if len(overrides) == 0 {
		return fmt.Sprintf("not allowed: the server's configuration lets %s's file set nothing of app %s (its allowed_overrides are empty)", rc.repo, sa.Name)
	}
	return fmt.Sprintf("not allowed: the server's configuration lets %s's file set only %s of app %s (allowed_overrides)", rc.repo, strings.Join(overrides, ", "), sa.Name)
}

// validate checks the app as the file makes it (m, the server's sa with the file's keys), as
// the server's own apps are checked, each problem on the line of the file that causes it (or
// of the app, for what the server's configuration leaves missing).
func (rc *repoCheck) validate(p string, m App, sa *App) {
	scratch := &Config{File: rc.w.file, Stages: rc.c.Stages, Credentials: rc.c.Credentials, Apps: []App{m}, lines: map[string]int{}}
	for path, line := range rc.w.lines {
		if path == p || within(path, p) {
			scratch.lines["apps[0]"+path[len(p):]] = line
		}
	}
	for _, b := range rc.w.bad {
		if b == p || within(b, p) {
			scratch.bad = append(scratch.bad, "apps[0]"+b[len(p):])
		}
	}
	v := &validator{c: scratch}
	v.apps()
	overrides := rc.c.Overrides(sa)
	for _, pr := range v.probs {
		if rest, ok := strings.CutPrefix(pr.Field, "apps[0]"); ok {
			pr.Field = p + rest
			rel := listIndex.ReplaceAllString(strings.TrimPrefix(rest, "."), "")
			if rel != "" && !slices.ContainsFunc(overrides, func(o string) bool { return allows(o, rel) }) {
				pr.Message += "; only the server's configuration sets " + rel
			}
		}
		rc.probs = append(rc.probs, pr)
	}
}

// mergeApp is the server's app sa with the keys of the file's app fa that the file may set
// (allowed, list positions left out), defaulted. Lists are replaced whole.
func mergeApp(sa, fa App, allowed map[string]bool) App {
	a := sa.clone()
	set := func(rel string, apply func()) {
		if allowed[rel] {
			apply()
		}
	}
	set("codebuild_project", func() { a.CodeBuildProject = fa.CodeBuildProject })
	set("image_reference", func() { a.ImageReference = fa.ImageReference })
	set("pr_build.enabled", func() { a.PRBuild.Enabled = fa.PRBuild.Enabled })
	set("pr_build.codebuild_project", func() { a.PRBuild.CodeBuildProject = fa.PRBuild.CodeBuildProject })
	set("pr_build.buildspec", func() { a.PRBuild.Buildspec = fa.PRBuild.Buildspec })
	for name, fs := range fa.Stages {
		sp := "stages." + name
		if !allowed[sp] {
			continue
		}
		if a.Stages == nil {
			a.Stages = map[string]AppStage{}
		}
		s := a.Stages[name]
		set(sp+".buildspec", func() { s.Buildspec = fs.Buildspec })
		set(sp+".secret_id", func() { s.SecretID = fs.SecretID })
		set(sp+".env_key_secret", func() { s.EnvKeySecret = fs.EnvKeySecret })
		set(sp+".rollout_timeout", func() { s.RolloutTimeout = fs.RolloutTimeout })
		set(sp+".deployments", func() { s.Deployments = fa.clone().Stages[name].Deployments })
		a.Stages[name] = s
	}
	a.applyDefaults()
	return a
}

// lineOf is the line of path in lines, or of its nearest ancestor that has one.
func lineOf(lines map[string]int, path string) int {
	return (&Config{lines: lines}).line(path)
}

// under reports whether rel is one of the keys refused or under one of them.
func under(rel string, refused map[string]bool) bool {
	for r := range refused {
		if rel == r || within(rel, r) {
			return true
		}
	}
	return false
}

// holds reports whether rel is a mapping on the way to the override key o: stages holds
// stages.*.buildspec, and so does stages.test.
func holds(rel, o string) bool {
	r, k := strings.Split(rel, "."), strings.Split(o, ".")
	if len(r) >= len(k) {
		return false
	}
	for i := range r {
		if r[i] != k[i] && !(i == 1 && k[0] == "stages" && k[1] == "*") {
			return false
		}
	}
	return true
}
