package config

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// Config is the whole configuration.
type Config struct {
	File        string      `yaml:"-"`         // path it was loaded from ("" for Default())
	Listen      string      `yaml:"listen"`    // default ":8080"
	LogLevel    string      `yaml:"log_level"` // debug|info|warn|error, default info
	GitHub      GitHub      `yaml:"github"`
	Store       Store       `yaml:"store"`
	Credentials Credentials `yaml:"credentials"`
	Stages      []Stage     `yaml:"stages"` // omitted: the seed's stages
	Apps        []App       `yaml:"apps"`

	lines map[string]int    // field path -> line, for problems found after parsing
	bad   []string          // field paths whose values could not be decoded
	env   map[string]string // field path -> the environment variable that set it
}

// GitHub is the GitHub App Stagecoach runs as.
type GitHub struct {
	AppID             int64  `yaml:"app_id"`
	PrivateKeyFile    string `yaml:"private_key_file"`
	WebhookSecretFile string `yaml:"webhook_secret_file"`
	APIURL            string `yaml:"api_url"` // default https://api.github.com/; GHE: https://HOST/api/v3/
	// WebhookSecret comes only from STAGECOACH_WEBHOOK_SECRET, never from the file.
	WebhookSecret string `yaml:"-"`
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
	Promoters   Approvers  `yaml:"promoters"`
}

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
	ImageReference string              `yaml:"image_reference"`
	Stages         map[string]AppStage `yaml:"stages"`
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
}

// Deployment is a Kubernetes Deployment and the containers in it that run the app's image.
type Deployment struct {
	Name       string   `yaml:"name"`
	Containers []string `yaml:"containers"`
}

// SeedStages are the stages of the seed process: dev by hand, master -> test on merge,
// alpha -> alpha and prod -> prod on push; dev, test and alpha share the nonprod tier.
func SeedStages() []Stage {
	return []Stage{
		{Name: "dev", Credentials: "nonprod"},
		{Name: "test", Branch: "master", Trigger: TriggerMerge, Credentials: "nonprod"},
		{Name: "alpha", Branch: "alpha", Trigger: TriggerPush, Credentials: "nonprod"},
		{Name: "prod", Branch: "prod", Trigger: TriggerPush, Credentials: "prod"},
	}
}

// Default is the configuration with no file: the seed's stages, no apps, SQLite.
func Default() *Config {
	c := &Config{}
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
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
	for i := range c.Apps {
		if c.Apps[i].ImageReference == "" {
			c.Apps[i].ImageReference = "digest"
		}
		for name, s := range c.Apps[i].Stages {
			if s.Buildspec == "" {
				s.Buildspec = "buildspec.yaml"
			}
			if s.EnvKeySecret == "" {
				s.EnvKeySecret = c.Apps[i].Name + "-env-key"
			}
			if s.RolloutTimeout == 0 {
				s.RolloutTimeout = 10 * time.Minute
			}
			c.Apps[i].Stages[name] = s
		}
	}
}

// App returns the app called name, or nil.
func (c *Config) App(name string) *App {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i]
		}
	}
	return nil
}

// AppsForRepo returns the apps built from a repository (owner/name, case-insensitive).
func (c *Config) AppsForRepo(fullName string) []*App {
	var out []*App
	for i := range c.Apps {
		if strings.EqualFold(c.Apps[i].Repo, fullName) {
			out = append(out, &c.Apps[i])
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
