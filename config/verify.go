package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Artifact modes of an app (App.Artifact).
const (
	// ArtifactBuild builds the commit for each stage, with that stage's configuration baked in:
	// the seed's way, and the default.
	ArtifactBuild = "build"
	// ArtifactPromote builds the image once, for the first stage of the promotion order, with
	// no stage's configuration in it, and promotes that exact digest to the later stages (copied
	// into a stage's own registry when it has one), which read their configuration at run time
	// from their Kubernetes Secret (EnvSecret).
	ArtifactPromote = "promote"
)

// Promotes reports whether the app builds once and promotes the digest.
func (a *App) Promotes() bool { return a.Artifact == ArtifactPromote }

// Repository is the ECR repository the app's images run from on stage: the stage's own
// image_repository, else the app's.
func (a *App) Repository(stage string) string {
	if r := a.Stages[stage].ImageRepository; r != "" {
		return r
	}
	return a.ImageRepository
}

// Verify is how a deploy is checked once it is out: HTTP checks, a CodeBuild project run with
// the deployed commit, or both. The deploy succeeds only if every part passes; otherwise it is
// rolled back.
type Verify struct {
	HTTP []HTTPCheck `yaml:"http"`
	// CodeBuildProject runs the repository's verification (smoke tests, say) at the deployed
	// commit, with the stage's credentials tier; it passes when its build succeeds.
	CodeBuildProject string `yaml:"codebuild_project"`
	Buildspec        string `yaml:"buildspec"` // default buildspec-verify.yaml
}

// Configured reports whether there is anything to verify.
func (v Verify) Configured() bool { return len(v.HTTP) > 0 || v.CodeBuildProject != "" }

// HTTPCheck asks a URL every Interval until it has answered as expected Successes times in a
// row, and fails when that has not happened within Duration.
type HTTPCheck struct {
	Name string `yaml:"name"` // default: the URL's host and path
	// URL is http or https. On a stage with two slots, a URL containing {slot} is asked for the
	// idle slot before the switch (a preview Service per slot, say); any other URL is asked
	// after the switch, of what users reach.
	URL       string        `yaml:"url"`
	Status    int           `yaml:"status"`    // the status code expected; default 200
	Body      string        `yaml:"body"`      // a regular expression the body must match; "" for any body
	Duration  time.Duration `yaml:"duration"`  // default 2m
	Interval  time.Duration `yaml:"interval"`  // default 10s
	Timeout   time.Duration `yaml:"timeout"`   // one request's; default 5s
	Successes int           `yaml:"successes"` // answers as expected in a row that pass; default 3
}

// SlotPlaceholder in a check's URL is replaced by the slot the check asks about.
const SlotPlaceholder = "{slot}"

// Idle reports whether the check asks about the idle slot, before the switch.
func (h HTTPCheck) Idle() bool { return strings.Contains(h.URL, SlotPlaceholder) }

// URLFor is the check's URL for slot.
func (h HTTPCheck) URLFor(slot string) string {
	return strings.ReplaceAll(h.URL, SlotPlaceholder, slot)
}

func (v *Verify) applyDefaults() {
	if v.CodeBuildProject != "" && v.Buildspec == "" {
		v.Buildspec = "buildspec-verify.yaml"
	}
	for i := range v.HTTP {
		h := &v.HTTP[i]
		if h.Name == "" {
			if u, err := url.Parse(h.URL); err == nil && u.Host != "" {
				h.Name = u.Host + u.Path
			} else {
				h.Name = h.URL
			}
		}
		if h.Status == 0 {
			h.Status = 200
		}
		if h.Duration == 0 {
			h.Duration = 2 * time.Minute
		}
		if h.Interval == 0 {
			h.Interval = 10 * time.Second
		}
		if h.Timeout == 0 {
			h.Timeout = min(5*time.Second, h.Interval)
		}
		if h.Successes == 0 {
			h.Successes = 3
		}
	}
}

// artifact checks an app's artifact mode and what promoting needs of each stage.
func (v *validator) artifact(p string, app App) {
	switch app.Artifact {
	case ArtifactBuild, ArtifactPromote:
	default:
		v.add(p+".artifact", "want build (each stage builds its own image) or promote (build once, promote the digest), got %q", app.Artifact)
		return
	}
	if !app.Promotes() {
		return
	}
	if app.ImageReference != "digest" {
		v.add(p+".image_reference", "artifact: promote runs exactly the digest that was tested: image_reference must be digest, not %q", app.ImageReference)
	}
}

// appStage checks what a stage of an app adds for artifact: promote and verification.
func (v *validator) appStage(sp string, app App, stage string, as AppStage) {
	if as.ImageRepository != "" && !ecrRE.MatchString(as.ImageRepository) {
		v.add(sp+".image_repository", "want an ECR repository like 210987654321.dkr.ecr.eu-west-1.amazonaws.com/NAME, got %q", as.ImageRepository)
	}
	defaulted := as.EnvSecret == app.Name+"-env" && !nameRE.MatchString(app.Name)
	if as.EnvSecret != "" && !defaulted && !k8sNameRE.MatchString(as.EnvSecret) {
		v.add(sp+".env_secret", "want a Kubernetes Secret name, got %q", as.EnvSecret)
	}
	st := v.c.Stage(stage)
	vp := sp + ".verify"
	if as.Verify.CodeBuildProject == "" && as.Verify.Buildspec != "" {
		v.add(vp+".buildspec", "a buildspec needs a codebuild_project to run it in")
	}
	if pb := app.PRBuild; pb.Enabled && as.Verify.CodeBuildProject != "" && as.Verify.CodeBuildProject == pb.CodeBuildProject {
		v.add(vp+".codebuild_project", "must differ from pr_build.codebuild_project %q: verification runs with the %s tier, which a pull request's own code must never get",
			pb.CodeBuildProject, stageTier(st))
	}
	for i, h := range as.Verify.HTTP {
		v.httpCheck(fmt.Sprintf("%s.http[%d]", vp, i), h, st)
	}
}

func stageTier(st *Stage) string {
	if st == nil {
		return "stage's"
	}
	return st.Credentials
}

// httpCheck checks one HTTP check: a URL the pipeline may ask (http or https, no credentials in
// it, not the cloud's metadata service), an expectation that can be met, and timing that can
// pass within its duration.
func (v *validator) httpCheck(hp string, h HTTPCheck, st *Stage) {
	if h.Idle() && (st == nil || !st.Slotted()) {
		v.add(hp+".url", "%s names a slot, but this stage has no slots: use the stage's own URL", SlotPlaceholder)
	}
	if why := checkURL(h.URLFor("slot")); why != "" {
		v.add(hp+".url", "%s, got %q", why, withoutUserinfo(h.URL))
	}
	if h.Status < 100 || h.Status > 599 {
		v.add(hp+".status", "want an HTTP status code from 100 to 599, got %d", h.Status)
	}
	if _, err := regexp.Compile(h.Body); err != nil {
		v.add(hp+".body", "want a regular expression (RE2 syntax): %v", err)
	}
	switch {
	case h.Interval < 100*time.Millisecond:
		v.add(hp+".interval", "want at least 100ms, got %s", h.Interval)
	case h.Timeout <= 0 || h.Timeout > 30*time.Second:
		v.add(hp+".timeout", "want a positive duration of at most 30s, got %s", h.Timeout)
	case h.Successes < 1 || h.Successes > 100:
		v.add(hp+".successes", "want 1 to 100 answers in a row, got %d", h.Successes)
	case h.Duration > time.Hour:
		v.add(hp+".duration", "want at most 1h (the deploy holds the stage while it verifies), got %s", h.Duration)
	case h.Duration < time.Duration(h.Successes-1)*h.Interval+h.Timeout:
		v.add(hp+".duration", "%s cannot hold %d answers in a row %s apart: want at least %s", h.Duration, h.Successes, h.Interval,
			time.Duration(h.Successes-1)*h.Interval+h.Timeout)
	}
}

// checkURL says what is wrong with a check's URL for Stagecoach to ask it, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "want an absolute http or https URL such as https://alpha.acme.dev/healthz"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme %q: Stagecoach asks http and https URLs only", u.Scheme)
	case u.User != nil:
		return "credentials in a URL would be sent with every check and shown on GitHub: use a health endpoint that needs none"
	case u.Fragment != "":
		return "a fragment is never sent to the server: leave it out"
	}
	if ip := net.ParseIP(strings.Trim(u.Hostname(), "[]")); ip != nil && !AllowedCheckIP(ip) {
		return fmt.Sprintf("%s is a link-local, multicast or unspecified address (the cloud's metadata service is one): Stagecoach never asks it", ip)
	}
	return ""
}

// withoutUserinfo is raw with any user name and password replaced: a problem report repeats the
// URL, and must not repeat a secret with it.
func withoutUserinfo(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if at := strings.LastIndex(raw, "@"); at >= 0 {
			if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
				return raw[:scheme+3] + "REDACTED" + raw[at:]
			}
			return "REDACTED" + raw[at:]
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// AllowedCheckIP reports whether an HTTP check may connect to ip: not a link-local address
// (169.254.169.254 is the cloud's metadata service, which hands out credentials), multicast, or
// unspecified. Loopback and private addresses are allowed: health endpoints live there.
func AllowedCheckIP(ip net.IP) bool {
	return !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() && !ip.IsMulticast() && !ip.IsUnspecified() && !ip.IsInterfaceLocalMulticast()
}
