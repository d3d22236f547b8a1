package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	nameRE     = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	repoRE     = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	roleARNRE  = regexp.MustCompile(`^arn:aws[-a-z]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	ecrRE      = regexp.MustCompile(`^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[a-z0-9][a-z0-9._/-]*$`)
	teamRE     = regexp.MustCompile(`^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$`)
	k8sNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	logLevels  = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}
	tierForUse = map[string]bool{"nonprod": true, "prod": true}
)

// validator collects problems, each with the line of its field.
type validator struct {
	c     *Config
	probs Problems
}

func (v *validator) add(field, format string, args ...any) {
	v.probs = append(v.probs, Problem{File: v.c.File, Line: v.c.line(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration and returns every problem at once (Problems), or nil.
func (c *Config) Validate() error {
	if c.lines == nil {
		c.lines = map[string]int{}
	}
	v := &validator{c: c}
	v.server()
	v.github()
	v.store()
	v.credentials()
	v.stages()
	v.apps()
	if len(v.probs) > 0 {
		return v.probs
	}
	return nil
}

func (v *validator) server() {
	if _, port, err := net.SplitHostPort(v.c.Listen); err != nil {
		v.add("listen", "want host:port (e.g. \":8080\"), got %q", v.c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add("listen", "port %q is not a number from 0 to 65535", port)
	}
	if !logLevels[v.c.LogLevel] {
		v.add("log_level", "want debug, info, warn or error, got %q", v.c.LogLevel)
	}
}

func (v *validator) github() {
	g := v.c.GitHub
	u, err := url.Parse(g.APIURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		v.add("github.api_url", "want an absolute http(s) URL such as https://api.github.com/ or https://HOST/api/v3/, got %q", g.APIURL)
	}
	if g.AppID < 0 {
		v.add("github.app_id", "must be positive, got %d", g.AppID)
	}
	if (g.AppID != 0) != (g.PrivateKeyFile != "") {
		v.add("github", "app_id and private_key_file go together: set both (a GitHub App) or neither (local mode)")
	}
}

func (v *validator) store() {
	s := v.c.Store
	if s.SQLite != "" && s.Postgres != "" {
		v.add("store", "set sqlite or postgres, not both")
	}
	if s.Postgres != "" && !strings.HasPrefix(s.Postgres, "postgres://") && !strings.HasPrefix(s.Postgres, "postgresql://") {
		v.add("store.postgres", "want a postgres:// URL")
	}
}

func (v *validator) credentials() {
	for _, name := range []string{"pr", "nonprod", "prod"} {
		t, _ := v.c.Credentials.Tier(name)
		if t.RoleARN != "" && !roleARNRE.MatchString(t.RoleARN) {
			v.add("credentials."+name+".role_arn", "want an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got %q", t.RoleARN)
		}
		if t.ExternalID != "" && t.RoleARN == "" {
			v.add("credentials."+name+".external_id", "an external_id needs a role_arn")
		}
	}
}

func (v *validator) stages() {
	names := map[string]int{}
	branches := map[string]string{}
	for i, st := range v.c.Stages {
		p := fmt.Sprintf("stages[%d]", i)
		switch {
		case st.Name == "":
			v.add(p+".name", "required")
		case !nameRE.MatchString(st.Name):
			v.add(p+".name", "want lower-case letters, digits and dashes starting with a letter, got %q", st.Name)
		}
		if j, dup := names[st.Name]; dup && st.Name != "" {
			v.add(p+".name", "stage %q is already defined at stages[%d]", st.Name, j)
		}
		names[st.Name] = i
		switch st.Trigger {
		case TriggerNone, TriggerMerge, TriggerPush:
		default:
			v.add(p+".trigger", "want merge, push or nothing (deploy by command only), got %q", st.Trigger)
		}
		if (st.Trigger == TriggerMerge || st.Trigger == TriggerPush) && st.Branch == "" {
			v.add(p+".branch", "a stage with trigger %q needs a branch", st.Trigger)
		}
		if st.Branch != "" {
			if other, dup := branches[st.Branch]; dup {
				v.add(p+".branch", "branch %q is already stage %q's", st.Branch, other)
			}
			branches[st.Branch] = st.Name
		}
		switch {
		case st.Credentials == "pr":
			v.add(p+".credentials", "the pr tier is for pull-request builds only; stages use nonprod or prod")
		case !tierForUse[st.Credentials]:
			v.add(p+".credentials", "want nonprod or prod, got %q", st.Credentials)
		case len(v.c.Apps) > 0:
			if t, _ := v.c.Credentials.Tier(st.Credentials); t.RoleARN == "" {
				v.add(p+".credentials", "tier %q has no role_arn under credentials", st.Credentials)
			}
		}
		if ns := st.Kubernetes.Namespace; !k8sNameRE.MatchString(ns) || len(ns) > 63 {
			v.add(p+".kubernetes.namespace", "%q is not a valid Kubernetes namespace", ns)
		}
		if st.Kubernetes.InCluster && (st.Kubernetes.Kubeconfig != "" || st.Kubernetes.Context != "") {
			v.add(p+".kubernetes.in_cluster", "in_cluster excludes kubeconfig and context")
		}
		for j, team := range st.Promoters.Teams {
			if !teamRE.MatchString(team) {
				v.add(fmt.Sprintf("%s.promoters.teams[%d]", p, j), "want org/team-slug, got %q", team)
			}
		}
		for j, u := range st.Promoters.Users {
			if strings.TrimSpace(u) == "" || strings.ContainsAny(u, " /@") {
				v.add(fmt.Sprintf("%s.promoters.users[%d]", p, j), "want a GitHub login, got %q", u)
			}
		}
	}
}

func (v *validator) apps() {
	names := map[string]int{}
	for i, app := range v.c.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		switch {
		case app.Name == "":
			v.add(p+".name", "required")
		case !nameRE.MatchString(app.Name):
			v.add(p+".name", "want lower-case letters, digits and dashes starting with a letter, got %q", app.Name)
		}
		if j, dup := names[app.Name]; dup && app.Name != "" {
			v.add(p+".name", "app %q is already defined at apps[%d]", app.Name, j)
		}
		names[app.Name] = i
		if !repoRE.MatchString(app.Repo) {
			v.add(p+".repo", "want owner/name, got %q", app.Repo)
		}
		if len(app.Stages) == 0 {
			v.add(p+".stages", "an app needs at least one stage")
			continue
		}
		if app.CodeBuildProject == "" {
			v.add(p+".codebuild_project", "required")
		}
		if app.ImageReference != "digest" && app.ImageReference != "tag" {
			v.add(p+".image_reference", "want digest or tag, got %q", app.ImageReference)
		}
		if !ecrRE.MatchString(app.ImageRepository) {
			v.add(p+".image_repository", "want an ECR repository like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/NAME, got %q", app.ImageRepository)
		}
		for _, stage := range slices.Sorted(maps.Keys(app.Stages)) {
			as := app.Stages[stage]
			sp := p + ".stages." + stage
			if v.c.Stage(stage) == nil {
				v.add(sp, "no stage %q is defined (stages: %s)", stage, v.stageNames())
			}
			if as.SecretID == "" {
				v.add(sp+".secret_id", "required: the Secrets Manager secret the build writes .env from")
			}
			if !k8sNameRE.MatchString(as.EnvKeySecret) {
				v.add(sp+".env_key_secret", "want a Kubernetes Secret name, got %q", as.EnvKeySecret)
			}
			if as.RolloutTimeout < 0 {
				v.add(sp+".rollout_timeout", "must be positive, got %s", as.RolloutTimeout)
			}
			if len(as.Deployments) == 0 {
				v.add(sp+".deployments", "at least one Deployment is required")
			}
			for j, d := range as.Deployments {
				dp := fmt.Sprintf("%s.deployments[%d]", sp, j)
				if !k8sNameRE.MatchString(d.Name) {
					v.add(dp+".name", "want a Kubernetes object name, got %q", d.Name)
				}
				if len(d.Containers) == 0 {
					v.add(dp+".containers", "at least one container is required")
				}
				for k, ct := range d.Containers {
					if !k8sNameRE.MatchString(ct) {
						v.add(fmt.Sprintf("%s.containers[%d]", dp, k), "want a container name, got %q", ct)
					}
				}
			}
		}
	}
}

func (v *validator) stageNames() string {
	var names []string
	for _, s := range v.c.Stages {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// ApplyEnv applies the environment's overrides: STAGECOACH_WEBHOOK_SECRET,
// STAGECOACH_GITHUB_APP_ID, STAGECOACH_GITHUB_PRIVATE_KEY_FILE, STAGECOACH_GITHUB_API_URL and
// STAGECOACH_STORE (a postgres:// URL or a SQLite path, optionally prefixed "sqlite:").
func (c *Config) ApplyEnv(getenv func(string) string) error {
	var probs Problems
	if s := getenv("STAGECOACH_WEBHOOK_SECRET"); s != "" {
		c.GitHub.WebhookSecret = s
	}
	if s := getenv("STAGECOACH_GITHUB_APP_ID"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			probs = append(probs, Problem{File: "environment", Field: "STAGECOACH_GITHUB_APP_ID", Message: fmt.Sprintf("want a positive integer, got %q", s)})
		} else {
			c.GitHub.AppID = id
		}
	}
	if s := getenv("STAGECOACH_GITHUB_PRIVATE_KEY_FILE"); s != "" {
		c.GitHub.PrivateKeyFile = s
	}
	if s := getenv("STAGECOACH_GITHUB_API_URL"); s != "" {
		if !strings.HasSuffix(s, "/") {
			s += "/"
		}
		c.GitHub.APIURL = s
	}
	if s := getenv("STAGECOACH_STORE"); s != "" {
		if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
			c.Store = Store{Postgres: s}
		} else {
			c.Store = Store{SQLite: strings.TrimPrefix(s, "sqlite:")}
		}
	}
	if len(probs) > 0 {
		return probs
	}
	return nil
}
