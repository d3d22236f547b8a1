package sandbox

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/signin"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
)

// The sandbox's one app, as the seed's first team has it.
const (
	repo            = "acme/maas-backend"
	app             = "maas-backend"
	imageRepository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/maas-backend"
	envKeySecret    = "maas-backend-env-key"
)

// The people of the story.
const (
	developer    = "alice"   // writes and merges pull requests; may not promote to prod
	lead         = "lena"    // the lead developer: promotes test to alpha and tags releases
	productOwner = "paula"   // accepts releases: promotes them to prod
	admin        = "omar"    // an admin of the repository, a product owner and alpha's second promoter: may force
	outsider     = "mallory" // no collaborator: comments on a public repository, and is not heard
	// watcher is who the sandbox signs in to the dashboard: an admin of the repository, so the
	// dashboard shows everything, the command audit included.
	watcher = "sam"
)

// The stages' calendar in the story, short enough to be played on the real clock: test is
// frozen for the story's first freezeFor (from when the configuration is written), and a commit
// must run soakFor on alpha before it may be promoted to prod.
const (
	freezeFor    = 8 * time.Second
	freezeReason = "payment provider maintenance"
	soakFor      = 8 * time.Second
)

var (
	stageNames = []string{"test", "alpha", "prod"}
	slots      = []string{"prod", "prod-backup"}
)

// prodAccount is the AWS account prod's role lives in, apart from the image repository's.
const prodAccount = "210987654321"

// The credentials tiers' roles, which the AWS test servers let Stagecoach assume.
var roles = map[string]string{
	"pr":      "arn:aws:iam::123456789012:role/stagecoach-pr",
	"nonprod": "arn:aws:iam::123456789012:role/stagecoach-nonprod",
	"prod":    "arn:aws:iam::" + prodAccount + ":role/stagecoach-prod",
}

// commit is a sandbox commit's sha: 40 hex digits derived from its name, as stable as a story.
func commit(name string) string {
	h := sha1.Sum([]byte("stagecoach sandbox: " + name))
	return hex.EncodeToString(h[:])
}

// seedGitHub gives the repository its history and branches, and the organisation its people.
func (w *World) seedGitHub() {
	gh := w.GitHub
	root := commit("initial")
	gh.AddCommit(repo, root, nil, "Initial commit", 0)
	gh.SetDefaultBranch(repo, "master")
	for _, b := range []string{"master", "alpha", "prod"} {
		gh.SetRef(repo, b, root)
	}
	gh.SetPermission(repo, developer, "write")
	gh.SetPermission(repo, lead, "maintain")
	gh.SetPermission(repo, productOwner, "triage")
	gh.SetTeamMember("acme", "product-owners", productOwner)
	gh.SetPermission(repo, admin, "admin")
	gh.SetTeamMember("acme", "product-owners", admin)
	gh.SetPermission(repo, watcher, "admin")
	gh.SetBrowserUser(watcher) // GitHub's authorize page sends the sandbox's browser straight back
}

// seedAWS makes the secrets the stages build with and lets the tiers' roles be assumed.
func (w *World) seedAWS() {
	w.AWS.CodeBuild.SetScript(awstest.Script{PhaseDuration: w.o.Phase})
	w.AWS.ECR.SetImmutable(imageRepository) // as ECR recommends: a tag, once pushed, names one image
	// prod's role lives in another account (as the seed's teams keep prod): the repository's
	// policy lets that account read its images, as a real cross-account setup must.
	w.AWS.ECR.AllowPull(imageRepository, prodAccount)
	for _, st := range stageNames {
		w.AWS.Secrets.Add(app + "/" + st)
	}
	for _, r := range roles {
		w.AWS.STS.Allow(r, "")
	}
}

// writeConfig writes the GitHub App's key, the webhook secret and the configuration Stagecoach
// runs on, each readable only by its owner, and loads the configuration back as Stagecoach would.
func (w *World) writeConfig() (*config.Config, error) {
	dir := w.o.Dir
	keyFile := filepath.Join(dir, "github-app.pem")
	secretFile := filepath.Join(dir, "webhook-secret")
	clientSecretFile := filepath.Join(dir, "client-secret")
	if err := os.WriteFile(clientSecretFile, []byte(w.GitHub.ClientSecret()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	tok, tokSHA, err := signin.NewToken()
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	w.apiToken = tok
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.WriteFile(keyFile, w.GitHub.PrivateKeyPEM(), 0o600); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.WriteFile(secretFile, []byte(hex.EncodeToString(raw[:])+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	kube := func(stage string) string {
		if w.o.Kube == nil {
			return fmt.Sprintf("{context: simulated, namespace: %s}", w.kube.ns[stage])
		}
		return fmt.Sprintf("{kubeconfig: %q, context: %q, namespace: %s}", w.o.Kube.Kubeconfig, w.o.Kube.Context, w.kube.ns[stage])
	}
	// test's freeze starts now and ends freezeFor later: the story's first merge comes while it
	// holds, and its deploy starts when it ends.
	from := time.Now().UTC().Truncate(time.Second)
	w.freezeUntil = from.Add(freezeFor)
	text := fmt.Sprintf(`# Written by stagecoach sandbox.
listen: %q
internal_listen: "127.0.0.1:0"
log_level: info
github:
  app_id: %d
  private_key_file: %q
  webhook_secret_file: %q
  api_url: %q
  client_id: %q
  client_secret_file: %q
signin:
  api_tokens: [{name: sandbox, sha256: %s, audit: true}]
store:
  sqlite: %q
credentials:
  pr: {role_arn: %q}
  nonprod: {role_arn: %q}
  prod: {role_arn: %q}
stages:
  - name: test
    branch: master
    trigger: merge
    credentials: nonprod
    kubernetes: %s
    freezes: [{from: %q, until: %q, reason: %q}]
  - name: alpha
    branch: alpha
    trigger: push
    credentials: nonprod
    promote_from: test
    min_soak: %s
    promoters: {users: [%s, %s]}
    kubernetes: %s
  - name: prod
    branch: prod
    trigger: push
    credentials: prod
    promote_from: alpha
    promoters: {teams: [acme/product-owners]}
    slots: [prod, prod-backup]
    kubernetes: %s
apps:
  - name: %s
    repo: %s
    codebuild_project: %s
    image_repository: %s
    pr_build: {enabled: true, codebuild_project: maas-backend-pr}
    allowed_overrides: [stages.test.buildspec]
    stages:
      test: {secret_id: %s/test, deployments: [{name: api, containers: [api]}], rollout_timeout: 1m}
      alpha: {secret_id: %s/alpha, deployments: [{name: api, containers: [api]}], rollout_timeout: 1m}
      prod:
        secret_id: %s/prod
        deployments: [{name: api, containers: [api], service: api}]
        rollout_timeout: 1m
        verify:
          http: [{name: %s, url: %q, status: 200, body: %q, interval: %s, timeout: %s, successes: %d, duration: %s}]
`, w.o.Listen, w.GitHub.AppID(), keyFile, secretFile, w.GitHub.URL(), w.GitHub.ClientID(), clientSecretFile, tokSHA, filepath.Join(dir, "stagecoach.db"),
		roles["pr"], roles["nonprod"], roles["prod"], kube("test"), from.Format(time.RFC3339), w.freezeUntil.Format(time.RFC3339), freezeReason,
		soakFor, lead, admin, kube("alpha"), kube("prod"),
		app, repo, app, imageRepository, app, app, app,
		healthCheck, w.health.URL(), healthBody, healthInterval, healthTimeout, healthSuccesses, healthDuration)
	path := filepath.Join(dir, "stagecoach.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	cfg, err := config.Load(path, func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("sandbox: its own configuration is not valid: %w", err)
	}
	return cfg, nil
}
