package config

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// Config is the whole configuration.
type Config struct {
	File        string      `yaml:"-"`               // path it was loaded from ("" for Default())
	Listen      string      `yaml:"listen"`          // the public listener; default ":8080"
	Internal    string      `yaml:"internal_listen"` // probes and metrics; default "127.0.0.1:9090"
	LogLevel    string      `yaml:"log_level"`       // debug|info|warn|error, default info
	Webhook     Webhook     `yaml:"webhook"`
	GitHub      GitHub      `yaml:"github"`
	Store       Store       `yaml:"store"`
	Credentials Credentials `yaml:"credentials"`
	Stages      []Stage     `yaml:"stages"` // omitted: the seed's stages
	Release     Release     `yaml:"release"`
	Commands    Commands    `yaml:"commands"`
	Recovery    Recovery    `yaml:"recovery"`
	// Apps are the server file's apps. Read them with EffectiveApps, App and AppsForRepo, which
	// include what repositories configure in their own files (RepoConfig).
	Apps       []App      `yaml:"apps"`
	RepoConfig RepoConfig `yaml:"repo_config"`
	SignIn     SignIn     `yaml:"signin"`
	Pipeline   Pipeline   `yaml:"pipeline"`
	Retention  Retention  `yaml:"retention"`

	lines map[string]int    // field path -> line, for problems found after parsing
	bad   []string          // field paths whose values could not be decoded
	env   map[string]string // field path -> the environment variable that set it
	reg   *registry         // the effective apps, once a repository's file changed them
}

// GitHub is the GitHub App Stagecoach runs as.
type GitHub struct {
	AppID             int64  `yaml:"app_id"`
	PrivateKeyFile    string `yaml:"private_key_file"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	APIURL            string `yaml:"api_url"` // default https://api.github.com/; GHE: https://HOST/api/v3/
	// WebhookSecret comes only from STAGECOACH_WEBHOOK_SECRET, never from the file.
	WebhookSecret string `yaml:"-"`
	// ClientID and the client secret are the App's own user authorization, with which people
	// sign in to the dashboard and the API (see SignIn).
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// ClientSecret comes only from STAGECOACH_GITHUB_CLIENT_SECRET, never from the file.
	ClientSecret string `yaml:"-"`
}

// Configured reports whether a GitHub App is set up.
func (g GitHub) Configured() bool { return g.AppID != 0 && g.PrivateKeyFile != "" }

// ReadWebhookSecret returns the webhook secret: the environment's, else the trimmed content of
// webhook_secret_file. Errors name the file, never its content.
func (g GitHub) ReadWebhookSecret() ([]byte, error) {
	if g.WebhookSecret != "" {
		return []byte(g.WebhookSecret), nil
	}
	if g.WebhookSecretFile == "" {
		return nil, fmt.Errorf("no webhook secret: set STAGECOACH_WEBHOOK_SECRET or github.webhook_secret_file")
	}
	b, err := os.ReadFile(g.WebhookSecretFile)
	if err != nil {
		return nil, fmt.Errorf("reading github.webhook_secret_file: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("github.webhook_secret_file %s is empty", g.WebhookSecretFile)
	}
	return []byte(s), nil
}

// Webhook bounds the intake's work before a delivery is authenticated.
type Webhook struct {
	// MaxUnverifiedMiB caps the MiB of request bodies read but not yet verified, over all
	// requests at once (default 64, at least 48): what anonymous senders can make the process
	// hold. Over it, requests are answered 503 with Retry-After.
	MaxUnverifiedMiB int `yaml:"max_unverified_mib"`
}

// Store says where Stagecoach keeps its state.
type Store struct {
	SQLite   string `yaml:"sqlite"`   // path; default stagecoach.db when Postgres is empty
	Postgres string `yaml:"postgres"` // postgres:// URL; needed for more than one replica
}

// DSN is the store's address as store.Open takes it.
func (s Store) DSN() string {
	if s.Postgres != "" {
		return s.Postgres
	}
	return "sqlite:" + s.SQLite
}

// Credentials are the AWS credentials tiers, each an IAM role Stagecoach assumes.
type Credentials struct {
	PR      Tier `yaml:"pr"`      // pull-request builds: least privilege, no stage secrets
	Nonprod Tier `yaml:"nonprod"` // dev, test, alpha
	Prod    Tier `yaml:"prod"`
}

// Tier is one IAM role.
type Tier struct {
	RoleARN    string `yaml:"role_arn"`
	ExternalID string `yaml:"external_id"`
}

// Tier returns the tier called name ("pr", "nonprod", "prod").
func (c Credentials) Tier(name string) (Tier, bool) {
	switch name {
	case "pr":
		return c.PR, true
	case "nonprod":
		return c.Nonprod, true
	case "prod":
		return c.Prod, true
	}
	return Tier{}, false
}

// Trigger is what deploys a stage by itself.
type Trigger string

// The triggers.
const (
	TriggerNone  Trigger = ""      // only commands deploy the stage
	TriggerMerge Trigger = "merge" // a pull request merged into the stage's branch (and pushes to it)
	TriggerPush  Trigger = "push"  // a push to the stage's branch
)

// Stage is one environment.
type Stage struct {
	Name        string     `yaml:"name"`
	Branch      string     `yaml:"branch"`
	Trigger     Trigger    `yaml:"trigger"`
	Credentials string     `yaml:"credentials"` // nonprod | prod
	Kubernetes  Kubernetes `yaml:"kubernetes"`
	// PromoteFrom is the stage a commit must have succeeded on before it may deploy here (the
	// stage order), and what `/promote <this stage>` takes: the commit live there.
	PromoteFrom string `yaml:"promote_from"`
	// Promoters may promote to the stage (and, unless Permissions says otherwise, deploy, roll
	// back and lock it). Nobody named: people with write access to the repository.
	Promoters   Approvers   `yaml:"promoters"`
	Permissions Permissions `yaml:"permissions"`
	// Slots, when set, are the stage's two slots (e.g. prod and prod-backup): a deploy goes to
	// the idle one and switches the Services to it once it is healthy.
	Slots []string `yaml:"slots"`
	// TimeZone is the IANA zone Windows and Freezes are written in (default UTC).
	TimeZone string `yaml:"time_zone"`
	// Windows are the weekly times at which deploys to the stage start; none: any time. Outside
	// them a deploy waits, queued, for the next one (config/windows.go).
	Windows []Window `yaml:"windows"`
	// Freezes are dated periods in which no deploy to the stage starts, each with its reason.
	Freezes []Freeze `yaml:"freezes"`
	// MinSoak is how long a commit must have run on this stage before it may be promoted from it
	// to the next (0: no wait).
	MinSoak time.Duration `yaml:"min_soak"`
}

// Guarded reports whether only approved commits may reach the stage: it has promoters or a
// stage it takes commits from. A push to a guarded stage's branch deploys only when its pusher
// is Stagecoach itself or may promote to the stage; anyone else's push deploys nothing.
func (s *Stage) Guarded() bool { return !s.Promoters.Empty() || s.PromoteFrom != "" }

// Slotted reports whether the stage switches between two slots: a deploy goes to the idle one.
func (s *Stage) Slotted() bool { return len(s.Slots) == 2 }

// Permissions name who may run each command on a stage; a command left empty falls back to the
// stage's promoters.
type Permissions struct {
	Deploy   Approvers `yaml:"deploy"`
	Rollback Approvers `yaml:"rollback"`
	Lock     Approvers `yaml:"lock"` // /lock and /unlock (a lock's owner may always unlock it)
}

// Empty reports whether nobody is named.
func (a Approvers) Empty() bool { return len(a.Users) == 0 && len(a.Teams) == 0 }

// Who returns the approvers of a command on the stage: "promote", "deploy", "rollback", "lock"
// or "unlock". The per-command permission wins; otherwise the promoters.
func (s *Stage) Who(verb string) Approvers {
	var a Approvers
	switch verb {
	case "deploy":
		a = s.Permissions.Deploy
	case "rollback":
		a = s.Permissions.Rollback
	case "lock", "unlock":
		a = s.Permissions.Lock
	}
	if a.Empty() {
		return s.Promoters
	}
	return a
}

// Release is how release tags become release issues.
type Release struct {
	// Tags are the patterns a release tag matches (path.Match syntax); default v* and sprint-*.
	Tags []string `yaml:"tags"`
	// Stage is the stage a release is promoted to (default prod); its promote_from stage is where
	// the tagged commit must have succeeded (alpha).
	Stage string `yaml:"stage"`
	// Label is the label of release issues (default release), created if missing.
	Label string `yaml:"label"`
}

// Commands is who may talk to Stagecoach in comments.
type Commands struct {
	// AuthorAssociations are the comment.author_association values whose commands are read
	// (default OWNER, MEMBER and COLLABORATOR). A command from anyone else costs no GitHub call
	// and gets no reply: it is only recorded in the audit trail as ignored.
	AuthorAssociations []string `yaml:"author_associations"`
}

// Associations are every author_association GitHub gives a comment.
var Associations = []string{"OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE"}

// Heard reports whether a comment whose author has association may command Stagecoach.
func (c Commands) Heard(association string) bool {
	for _, a := range c.AuthorAssociations {
		if strings.EqualFold(a, association) {
			return true
		}
	}
	return false
}

// Recovery is how Stagecoach finds the work it missed while every replica was down or failing
// (package recovery): failed webhook deliveries redelivered, trigger branch heads and release
// tags reconciled with what it recorded.
type Recovery struct {
	// Enabled turns recovery on; default true (it needs a GitHub App).
	Enabled *bool `yaml:"enabled"`
	// Interval is the time between two recovery passes of all replicas together (default 5m);
	// every process that starts runs one at once.
	Interval time.Duration `yaml:"interval"`
	// MaxAge is how old a failed delivery may be and still be redelivered (default 24h; GitHub
	// keeps three days of deliveries).
	MaxAge time.Duration `yaml:"max_age"`
}

// On reports whether recovery runs.
func (r Recovery) On() bool { return r.Enabled == nil || *r.Enabled }

// Kubernetes says where a stage runs.
type Kubernetes struct {
	Kubeconfig string `yaml:"kubeconfig"` // "" uses the default loading rules
	Context    string `yaml:"context"`
	Namespace  string `yaml:"namespace"` // default: the stage's name
	InCluster  bool   `yaml:"in_cluster"`
}

// Approvers are people allowed to do something: users by login, teams as org/slug.
type Approvers struct {
	Users []string `yaml:"users"`
	Teams []string `yaml:"teams"`
}

// App is one deployable repository.
type App struct {
	Name             string `yaml:"name"`
	Repo             string `yaml:"repo"`
	CodeBuildProject string `yaml:"codebuild_project"`
	ImageRepository  string `yaml:"image_repository"`
	// ImageReference is how deploys name the built image: "digest" (the default:
	// repository@sha256:..., exactly what was built) or "tag" (repository:tag).
	ImageReference string `yaml:"image_reference"`
	// Artifact is ArtifactBuild (the default: each stage builds its own image, with its
	// configuration baked in) or ArtifactPromote (build once, promote the tested digest).
	Artifact string              `yaml:"artifact"`
	PRBuild  PRBuild             `yaml:"pr_build"`
	Stages   map[string]AppStage `yaml:"stages"`
	// AllowedOverrides are the keys of this app the repository's own file may set (see
	// RepoConfig); none when empty, unless repo_config.allowed_overrides names some for every app.
	AllowedOverrides []string `yaml:"allowed_overrides"`
}

// PRBuild is how an app's pull requests are built: with the pr credentials tier, no stage
// secret, and no deploy, reported as the check run stagecoach/pr-build.
type PRBuild struct {
	Enabled bool `yaml:"enabled"`
	// CodeBuildProject runs the pull request's own code and buildspec: it must be a project of
	// its own, not the deploy project, whose service role reads the stage secrets and pushes
	// release images. Required when Enabled.
	CodeBuildProject string `yaml:"codebuild_project"`
	Buildspec        string `yaml:"buildspec"` // default buildspec-pr.yaml
	// Forks allows building pull requests from forks (still with the pr tier only). Default
	// false: code from outside the repository is not run at all.
	Forks bool `yaml:"forks"`
	// MergeQueue builds each merge group GitHub's merge queue asks checks for (merge_group
	// checks_requested) the same way, on the group's head commit: set it when stagecoach/pr-build
	// is a required check of a branch with a merge queue, which waits for it there.
	MergeQueue bool `yaml:"merge_queue"`
}

// AppStage is how an app is built and run on one stage.
type AppStage struct {
	Buildspec   string       `yaml:"buildspec"` // default buildspec.yaml
	SecretID    string       `yaml:"secret_id"`
	Deployments []Deployment `yaml:"deployments"`
	// EnvKeySecret is the Kubernetes Secret holding the key that decrypts .env at start-up;
	// default "<app>-env-key".
	EnvKeySecret string `yaml:"env_key_secret"`
	// RolloutTimeout bounds a rollout (default 10m); Kubernetes' own progress deadline also counts.
	RolloutTimeout time.Duration `yaml:"rollout_timeout"`
	// ImageRepository is the ECR repository the stage runs images from, when it is not the
	// app's (another account's registry, say): artifact: promote copies the tested image there.
	ImageRepository string `yaml:"image_repository"`
	// EnvSecret is the Kubernetes Secret the app reads the stage's configuration from at start-up
	// when its image carries none (artifact: promote); default "<app>-env".
	EnvSecret string `yaml:"env_secret"`
	// Verify checks the deploy once it is out; a failure rolls it back.
	Verify Verify `yaml:"verify"`
	// EnvironmentURL is where people open the app on the stage (https only): the GitHub
	// Deployment's "View deployment" link, and a link on the check run.
	EnvironmentURL string `yaml:"environment_url"`
}

// Deployment is a Kubernetes Deployment and the containers in it that run the app's image. On
// a stage with slots, each slot has its own Deployment, <name>-<slot>, and Service (the Service
// whose selector picks the live slot) is required.
type Deployment struct {
	Name       string   `yaml:"name"`
	Containers []string `yaml:"containers"`
	Service    string   `yaml:"service"`
}

// SlotDeployment is the name of Deployment name's copy in slot.
func SlotDeployment(name, slot string) string { return name + "-" + slot }

// SeedStages are the stages of the seed process: dev by hand, master -> test on merge,
// alpha -> alpha and prod -> prod on push; dev, test and alpha share the nonprod tier. A
// commit reaches alpha only from test, and prod only from alpha.
func SeedStages() []Stage {
	return []Stage{
		{Name: "dev", Credentials: "nonprod"},
		{Name: "test", Branch: "master", Trigger: TriggerMerge, Credentials: "nonprod"},
		{Name: "alpha", Branch: "alpha", Trigger: TriggerPush, Credentials: "nonprod", PromoteFrom: "test"},
		{Name: "prod", Branch: "prod", Trigger: TriggerPush, Credentials: "prod", PromoteFrom: "alpha"},
	}
}

// Default is the configuration with no file: the seed's stages, no apps, SQLite.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.reg == nil {
		c.reg = &registry{}
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.Internal == "" {
		c.Internal = "127.0.0.1:9090"
	}
	if c.Webhook.MaxUnverifiedMiB == 0 {
		c.Webhook.MaxUnverifiedMiB = 64
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.GitHub.APIURL == "" {
		c.GitHub.APIURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(c.GitHub.APIURL, "/") {
		c.GitHub.APIURL += "/"
	}
	if c.Store.SQLite == "" && c.Store.Postgres == "" {
		c.Store.SQLite = "stagecoach.db"
	}
	if c.Stages == nil {
		c.Stages = SeedStages()
	}
	for i := range c.Stages {
		if c.Stages[i].Kubernetes.Namespace == "" {
			c.Stages[i].Kubernetes.Namespace = c.Stages[i].Name
		}
	}
	if c.Release.Tags == nil {
		c.Release.Tags = []string{"v*", "sprint-*"}
	}
	if st := c.Stage("prod"); c.Release.Stage == "" && st != nil && st.PromoteFrom != "" {
		c.Release.Stage = "prod" // none named and no prod promoted from somewhere: no release issues
	}
	if c.Release.Label == "" {
		c.Release.Label = "release"
	}
	if c.Commands.AuthorAssociations == nil {
		c.Commands.AuthorAssociations = []string{"OWNER", "MEMBER", "COLLABORATOR"}
	}
	c.SignIn.applyDefaults()
	if c.Recovery.Interval == 0 {
		c.Recovery.Interval = 5 * time.Minute
	}
	if c.Recovery.MaxAge == 0 {
		c.Recovery.MaxAge = 24 * time.Hour
	}
	c.durabilityDefaults()
	if c.RepoConfig.Refresh == 0 {
		c.RepoConfig.Refresh = time.Hour
	}
	for i := range c.Apps {
		c.Apps[i].applyDefaults()
	}
}

// applyDefaults fills in what an app leaves out.
func (a *App) applyDefaults() {
	if a.ImageReference == "" {
		a.ImageReference = "digest"
	}
	if a.Artifact == "" {
		a.Artifact = ArtifactBuild
	}
	if pb := &a.PRBuild; pb.Enabled && pb.Buildspec == "" {
		pb.Buildspec = "buildspec-pr.yaml"
	}
	for name, s := range a.Stages {
		if s.Buildspec == "" {
			s.Buildspec = "buildspec.yaml"
		}
		if s.EnvKeySecret == "" {
			s.EnvKeySecret = a.Name + "-env-key"
		}
		if s.RolloutTimeout == 0 {
			s.RolloutTimeout = 10 * time.Minute
		}
		if s.EnvSecret == "" {
			s.EnvSecret = a.Name + "-env"
		}
		s.Verify.applyDefaults()
		a.Stages[name] = s
	}
}

// App returns the effective app called name (see EffectiveApps), or nil. It is shared: read it,
// never change it.
func (c *Config) App(name string) *App {
	apps := c.EffectiveApps()
	for i := range apps {
		if apps[i].Name == name {
			return &apps[i]
		}
	}
	return nil
}

// AppsForRepo returns the effective apps built from a repository (owner/name,
// case-insensitive), all of one generation (see EffectiveApps). They are shared: read them,
// never change them.
func (c *Config) AppsForRepo(fullName string) []*App {
	apps := c.EffectiveApps()
	var out []*App
	for i := range apps {
		if strings.EqualFold(apps[i].Repo, fullName) {
			out = append(out, &apps[i])
		}
	}
	return out
}

// Stage returns the stage called name, or nil.
func (c *Config) Stage(name string) *Stage {
	for i := range c.Stages {
		if c.Stages[i].Name == name {
			return &c.Stages[i]
		}
	}
	return nil
}

// StageNames lists the stages' names in order.
func (c *Config) StageNames() []string {
	out := make([]string, len(c.Stages))
	for i, s := range c.Stages {
		out[i] = s.Name
	}
	return out
}

// NextStages returns the stages that promote from stage: where its commits go next.
func (c *Config) NextStages(stage string) []*Stage {
	var out []*Stage
	for i := range c.Stages {
		if stage != "" && c.Stages[i].PromoteFrom == stage {
			out = append(out, &c.Stages[i])
		}
	}
	return out
}

// MatchRelease reports whether tag is a release tag.
func (c *Config) MatchRelease(tag string) bool {
	for _, p := range c.Release.Tags {
		if ok, _ := path.Match(p, tag); ok {
			return true
		}
	}
	return false
}

// StagesOnBranch returns the stages whose branch is branch.
func (c *Config) StagesOnBranch(branch string) []*Stage {
	var out []*Stage
	for i := range c.Stages {
		if branch != "" && c.Stages[i].Branch == branch {
			out = append(out, &c.Stages[i])
		}
	}
	return out
}
