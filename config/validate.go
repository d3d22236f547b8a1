package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
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
	v.addAt(v.c.line(field), field, format, args...)
}

// addAt records a problem on line (0: unknown). A problem about a field the decoder could not
// fill is left out: the type problem already says what is wrong there. A problem about a value
// the environment set names the variable instead of a line of the file.
func (v *validator) addAt(line int, field, format string, args ...any) {
	for _, b := range v.c.bad {
		if related(field, b) {
			return
		}
	}
	p := Problem{File: v.c.File, Line: line, Field: field, Message: fmt.Sprintf(format, args...)}
	if name, ok := v.c.env[field]; ok {
		p = Problem{File: "environment", Field: name, Message: p.Message}
	}
	v.probs = append(v.probs, p)
}

// related reports whether one field path is the other or contains it.
func related(a, b string) bool {
	return a == "" || b == "" || a == b || within(a, b) || within(b, a)
}

func within(path, ancestor string) bool {
	rest, ok := strings.CutPrefix(path, ancestor)
	return ok && (strings.HasPrefix(rest, ".") || strings.HasPrefix(rest, "["))
}

// Validate checks the whole configuration and returns every problem at once (Problems), or nil.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.server()
	v.github()
	v.store()
	v.credentials()
	v.stages()
	v.release()
	v.commands()
	v.recovery()
	v.apps()
	v.repoConfig()
	v.signin()
	v.durability()
	if len(v.probs) > 0 {
		return v.probs
	}
	return nil
}

func (v *validator) server() {
	v.address("listen", v.c.Listen, ":8080")
	v.address("internal_listen", v.c.Internal, "127.0.0.1:9090")
	if v.c.Internal == v.c.Listen && !strings.HasSuffix(v.c.Listen, ":0") {
		v.add("internal_listen", "must differ from listen (%q): probes and metrics stay off the public listener", v.c.Listen)
	}
	if n := v.c.Webhook.MaxUnverifiedMiB; n < 48 {
		v.add("webhook.max_unverified_mib", "want at least 48 (one of GitHub's largest deliveries, 25 MiB, with room beside it), got %d", n)
	}
	if !logLevels[v.c.LogLevel] {
		v.add("log_level", "want debug, info, warn or error, got %q", v.c.LogLevel)
	}
}

// address checks a host:port.
func (v *validator) address(field, addr, example string) {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		v.add(field, "want host:port (e.g. %q), got %q", example, addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.add(field, "port %q is not a number from 0 to 65535", port)
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
	if strings.Contains(s.SQLite, "://") {
		v.add("store.sqlite", "want a file path, got %q, which looks like a URL: only postgres:// and postgresql:// URLs are databases Stagecoach can use", s.SQLite)
	}
}

// credentials checks the tiers; every tier a stage uses needs a role once there are apps to
// build. The missing role is reported once per tier, where it belongs, naming the stages.
func (v *validator) credentials() {
	users := map[string][]string{}
	for _, st := range v.c.Stages {
		users[st.Credentials] = append(users[st.Credentials], st.Name)
	}
	for _, name := range []string{"pr", "nonprod", "prod"} {
		t, _ := v.c.Credentials.Tier(name)
		if t.RoleARN != "" && !roleARNRE.MatchString(t.RoleARN) {
			v.add("credentials."+name+".role_arn", "want an IAM role ARN like arn:aws:iam::123456789012:role/NAME, got %q", t.RoleARN)
		}
		if t.ExternalID != "" && t.RoleARN == "" {
			v.add("credentials."+name+".external_id", "an external_id needs a role_arn")
		}
		if t.RoleARN == "" && len(v.c.Apps) > 0 && len(users[name]) > 0 && name != "pr" {
			field := "credentials." + name + ".role_arn"
			line := v.c.line(field)
			if line == 0 {
				line = v.c.line("apps") // no credentials in the file: the apps are why one is needed
			}
			v.addAt(line, field, "required: the %s tier is used by stage(s) %s", name, strings.Join(users[name], ", "))
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
		if MergeQueueBranch(st.Branch) {
			v.add(p+".branch", "%q is a branch of GitHub's merge queue, which makes and deletes them for merge groups not merged yet: "+
				"a stage deploys from the branch the queue merges into", st.Branch)
		}
		if st.Branch != "" {
			if other, dup := branches[st.Branch]; dup {
				v.add(p+".branch", "branch %q is already stage %q's", st.Branch, other)
			}
			branches[st.Branch] = st.Name
		}
		switch {
		case st.Credentials == "":
			v.add(p+".credentials", "required: nonprod or prod")
		case st.Credentials == "pr":
			v.add(p+".credentials", "the pr tier is for pull-request builds only; stages use nonprod or prod")
		case !tierForUse[st.Credentials]:
			v.add(p+".credentials", "want nonprod or prod, got %q", st.Credentials)
		}
		// The namespace defaults to the name; a bad name is reported once, as the name.
		defaulted := st.Kubernetes.Namespace == st.Name && (st.Name == "" || !nameRE.MatchString(st.Name))
		if ns := st.Kubernetes.Namespace; !defaulted && (!k8sNameRE.MatchString(ns) || len(ns) > 63) {
			v.add(p+".kubernetes.namespace", "%q is not a valid Kubernetes namespace", ns)
		}
		if st.Kubernetes.InCluster && (st.Kubernetes.Kubeconfig != "" || st.Kubernetes.Context != "") {
			v.add(p+".kubernetes.in_cluster", "in_cluster excludes kubeconfig and context")
		}
		v.approvers(p+".promoters", st.Promoters)
		v.approvers(p+".permissions.deploy", st.Permissions.Deploy)
		v.approvers(p+".permissions.rollback", st.Permissions.Rollback)
		v.approvers(p+".permissions.lock", st.Permissions.Lock)
		v.slots(p, st)
		v.calendar(p, st)
	}
	v.promotionOrder()
}

func (v *validator) approvers(p string, a Approvers) {
	for j, team := range a.Teams {
		if !teamRE.MatchString(team) {
			v.add(fmt.Sprintf("%s.teams[%d]", p, j), "want org/team-slug, got %q", team)
		}
	}
	for j, u := range a.Users {
		if strings.TrimSpace(u) == "" || strings.ContainsAny(u, " /@") {
			v.add(fmt.Sprintf("%s.users[%d]", p, j), "want a GitHub login, got %q", u)
		}
	}
}

func (v *validator) slots(p string, st Stage) {
	if len(st.Slots) == 0 {
		return
	}
	if len(st.Slots) != 2 {
		v.add(p+".slots", "want two slots (the live one and the one to switch to), got %d", len(st.Slots))
		return
	}
	if st.Slots[0] == st.Slots[1] {
		v.add(p+".slots[1]", "slot %q is listed twice", st.Slots[1])
	}
	for j, slot := range st.Slots {
		if !k8sNameRE.MatchString(slot) || len(slot) > 40 {
			v.add(fmt.Sprintf("%s.slots[%d]", p, j), "want a Kubernetes label value of lower-case letters, digits and dashes, got %q", slot)
		}
	}
}

// promotionOrder checks promote_from names another stage and the order has no cycle.
func (v *validator) promotionOrder() {
	inCircle := map[string]bool{} // a circle is reported once, at its first stage
	for i, st := range v.c.Stages {
		if st.PromoteFrom == "" || inCircle[st.Name] {
			continue
		}
		field := fmt.Sprintf("stages[%d].promote_from", i)
		if st.PromoteFrom == st.Name {
			v.add(field, "a stage cannot promote from itself")
			continue
		}
		if v.c.Stage(st.PromoteFrom) == nil {
			v.add(field, "no stage %q is defined (stages: %s)", st.PromoteFrom, v.stageNames())
			continue
		}
		seen := map[string]bool{st.Name: true}
		for cur := v.c.Stage(st.PromoteFrom); cur != nil && cur.PromoteFrom != ""; cur = v.c.Stage(cur.PromoteFrom) {
			if seen[cur.Name] {
				v.add(field, "the promotion order goes round in a circle through %s", cur.Name)
				for n := range seen {
					inCircle[n] = true
				}
				break
			}
			seen[cur.Name] = true
		}
	}
}

func (v *validator) release() {
	r := v.c.Release
	for i, pat := range r.Tags {
		if _, err := path.Match(pat, ""); err != nil || strings.TrimSpace(pat) == "" {
			v.add(fmt.Sprintf("release.tags[%d]", i), "want a tag pattern such as v* or sprint-*, got %q", pat)
		}
	}
	if r.Stage == "" {
		return
	}
	st := v.c.Stage(r.Stage)
	switch {
	case st == nil:
		v.add("release.stage", "no stage %q is defined (stages: %s)", r.Stage, v.stageNames())
	case st.PromoteFrom == "":
		v.add("release.stage", "stage %q has no promote_from: a release must come from a stage it succeeded on", r.Stage)
	}
	if r.Label != "" && len(r.Label) > 50 {
		v.add("release.label", "a GitHub label has at most 50 characters, got %d", len(r.Label))
	}
}

func (v *validator) commands() {
	for i, a := range v.c.Commands.AuthorAssociations {
		if !slices.Contains(Associations, a) {
			v.add(fmt.Sprintf("commands.author_associations[%d]", i), "want one of %s, got %q", strings.Join(Associations, ", "), a)
		}
	}
}

func (v *validator) recovery() {
	r := v.c.Recovery
	if r.Interval < 10*time.Second || r.Interval > 24*time.Hour {
		v.add("recovery.interval", "want between 10s and 24h, got %s", r.Interval)
	}
	if r.MaxAge <= 0 || r.MaxAge > 72*time.Hour {
		v.add("recovery.max_age", "want a positive duration of at most 72h (GitHub keeps three days of deliveries), got %s", r.MaxAge)
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
		if app.Repo == "" {
			v.add(p+".repo", "required: the GitHub repository as owner/name")
		} else if !repoRE.MatchString(app.Repo) {
			v.add(p+".repo", "want owner/name, got %q", app.Repo)
		}
		if app.ImageReference != "digest" && app.ImageReference != "tag" {
			v.add(p+".image_reference", "want digest or tag, got %q", app.ImageReference)
		} else {
			v.artifact(p, app)
			v.promotion(p, app)
		}
		switch {
		case app.ImageRepository != "" && !ecrRE.MatchString(app.ImageRepository):
			v.add(p+".image_repository", "want an ECR repository like 123456789012.dkr.ecr.eu-west-1.amazonaws.com/NAME, got %q", app.ImageRepository)
		case app.ImageRepository == "" && len(app.Stages) > 0:
			v.add(p+".image_repository", "required: the ECR repository the build pushes to")
		}
		if app.CodeBuildProject == "" && (len(app.Stages) > 0 || app.PRBuild.Enabled) {
			v.add(p+".codebuild_project", "required: the CodeBuild project that builds the app")
		}
		if pb := app.PRBuild; pb.Enabled {
			switch {
			case pb.CodeBuildProject == "":
				v.addAt(v.c.line(p+".pr_build.enabled"), p+".pr_build.codebuild_project", "required: a pull request's build runs its own, unreviewed code "+
					"and buildspec, so it needs a CodeBuild project of its own whose role reads no stage secret and pushes no release image (docs/operations.md)")
			case pb.CodeBuildProject == app.CodeBuildProject:
				v.add(p+".pr_build.codebuild_project", "must differ from codebuild_project %q: the deploy project's role reads the stage secrets and pushes "+
					"release images, and a pull request's own code and buildspec would run with it", app.CodeBuildProject)
			}
		}
		if app.PRBuild.MergeQueue && !app.PRBuild.Enabled {
			v.add(p+".pr_build.merge_queue", "builds merge groups as pull requests are built: it needs pr_build.enabled (and its codebuild_project)")
		}
		if app.PRBuild.Enabled && v.c.Credentials.PR.RoleARN == "" {
			v.addAt(v.c.line(p+".pr_build.enabled"), "credentials.pr.role_arn", "required: app %s builds pull requests, which use the pr tier and only it", app.Name)
		}
		for _, stage := range slices.Sorted(maps.Keys(app.Stages)) {
			as := app.Stages[stage]
			sp := p + ".stages." + stage
			if v.c.Stage(stage) == nil {
				v.add(sp, "no stage %q is defined (stages: %s)", stage, v.stageNames())
			}
			if as.SecretID == "" && app.Artifact == ArtifactBuild {
				v.add(sp+".secret_id", "required: the Secrets Manager secret the build writes .env from")
			}
			// env_key_secret defaults from the app's name; a bad name is reported once, as the name.
			defaulted := as.EnvKeySecret == app.Name+"-env-key" && !nameRE.MatchString(app.Name)
			if !defaulted && !k8sNameRE.MatchString(as.EnvKeySecret) {
				v.add(sp+".env_key_secret", "want a Kubernetes Secret name, got %q", as.EnvKeySecret)
			}
			if as.RolloutTimeout < 0 {
				v.add(sp+".rollout_timeout", "must be positive, got %s", as.RolloutTimeout)
			}
			v.environmentURL(sp+".environment_url", as.EnvironmentURL)
			if len(as.Deployments) == 0 {
				v.add(sp+".deployments", "at least one Deployment is required")
			}
			v.appStage(sp, app, stage, as)
			seen := map[string]bool{}
			for j, d := range as.Deployments {
				dp := fmt.Sprintf("%s.deployments[%d]", sp, j)
				switch {
				case d.Name == "":
					v.add(dp+".name", "required: the Kubernetes Deployment's name")
				case seen[d.Name]:
					v.add(dp+".name", "Deployment %q is listed twice", d.Name)
				case !k8sNameRE.MatchString(d.Name):
					v.add(dp+".name", "want a Kubernetes object name, got %q", d.Name)
				}
				seen[d.Name] = true
				if st := v.c.Stage(stage); st != nil && len(st.Slots) > 0 && d.Service == "" {
					v.add(dp+".service", "required: stage %s has slots (%s), so the Service that switches between them must be named", stage, strings.Join(st.Slots, ", "))
				}
				if d.Service != "" && !k8sNameRE.MatchString(d.Service) {
					v.add(dp+".service", "want a Kubernetes Service name, got %q", d.Service)
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
