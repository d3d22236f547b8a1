// Package repoconfig puts repositories' own configuration files in force: .github/stagecoach.yml
// on a repository's default branch, in which the repository sets the keys of its apps that the
// server's configuration allows it to (config.RepoConfig, allowed_overrides).
//
// A Loader runs the jobs that read a file (jobs.KindRepoConfigLoad): recorded by the push
// handler when a push to the default branch changes the file, at every start and every
// repo_config.refresh. It reads the file from the default branch only (the contents API without
// a ref, so a pull request's head is never read), conditionally by the ETag of the last read, so
// an unchanged file costs nothing. A file config.ParseRepoFile takes becomes the repository's
// version in force, kept in the store with its commit, blob and ETag; a file it refuses changes
// nothing and the last good version stays in force. Either way the commit that brought the file
// gets a check run, stagecoach/config (jobs.KindRepoConfigCheckRun, recorded with the store's
// change in one transaction), which says what is in force or lists every problem as
// `file:line: field: message`.
//
// A Syncer makes every replica apply the version in force the store holds: at start, every few
// seconds, and before a deploy of the repository starts (Ready), which also waits a bounded
// time for a read in flight, so a merge that changes the file deploys with the file it brings.
// A deploy keeps the app configuration it started with to its end (package pipeline pins it in
// its checkpoint); lookups elsewhere see the new version at once, whole (config.SetRepoApps).
package repoconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/githubapp"
	"github.com/stagecoach/stagecoach/internal/jobs"
	"github.com/stagecoach/stagecoach/internal/store"
	"github.com/stagecoach/stagecoach/internal/worker"
)

// Store is what the package needs of the store.
type Store interface {
	RepoConfig(ctx context.Context, repo string) (store.RepoConfig, error)
	RepoConfigVersions(ctx context.Context) (map[string]int64, error)
	SaveRepoConfig(ctx context.Context, rc store.RepoConfig, from int64, js []jobs.Job) error
}

// GitHub gives the clients the package calls GitHub with.
type GitHub interface {
	App() (*github.Client, error)
	Installation(id int64) (*github.Client, error)
}

// Loader reads repositories' files (jobs.KindRepoConfigLoad).
type Loader struct {
	cfg  *config.Config
	st   Store
	gh   GitHub
	sync *Syncer
	log  *slog.Logger
}

// NewLoader builds the loader; what it puts in force it applies to this replica at once
// through sync (the others pick it up from the store).
func NewLoader(cfg *config.Config, st Store, gh GitHub, sync *Syncer, log *slog.Logger) *Loader {
	return &Loader{cfg: cfg, st: st, gh: gh, sync: sync, log: log}
}

// Executor runs the load jobs.
func (l *Loader) Executor() worker.Executor {
	return worker.Handle(jobs.KindRepoConfigLoad, func(ctx context.Context, _ jobs.Job, p jobs.RepoConfigLoad) error {
		return l.Load(ctx, p)
	})
}

// file is what a read of the contents API found.
type file struct {
	unchanged bool   // 304: the same answer as the ETag's
	exists    bool   // false: the default branch has no file
	blob      string // its blob sha
	content   []byte
	etag      string
	refused   string // why the file cannot be taken unparsed (not a file, too large)
}

// Load reads p.Repo's file from its default branch and records what it found.
func (l *Loader) Load(ctx context.Context, p jobs.RepoConfigLoad) error {
	if !l.cfg.RepoConfigOn(p.Repo) {
		l.log.Info("repository configuration: not read (repo_config does not cover the repository)", "repo", p.Repo)
		return nil
	}
	row, err := l.st.RepoConfig(ctx, p.Repo)
	known := err == nil
	if errors.Is(err, store.ErrNotFound) {
		row, err = store.RepoConfig{Repo: strings.ToLower(p.Repo)}, nil
	}
	if err != nil {
		return err
	}
	gh, inst, err := l.client(ctx, p)
	if err != nil {
		return err
	}
	owner, name, _ := strings.Cut(p.Repo, "/")
	// A start reads unconditionally: the server's configuration may have changed what the
	// same file means.
	etag := row.ETag
	if p.Reason == "start" {
		etag = ""
	}
	f, err := read(ctx, gh, owner, name, etag)
	if err != nil {
		return githubapp.Classify(fmt.Errorf("reading %s of %s: %w", config.RepoFilePath, p.Repo, err))
	}
	if f.unchanged || known && f.blob == row.ReadBlob && p.Reason != "start" {
		if !f.unchanged && f.etag != row.ETag {
			row.ETag = f.etag
			return l.st.SaveRepoConfig(ctx, row, row.Version, nil)
		}
		l.log.Debug("repository configuration unchanged", "repo", p.Repo)
		return nil
	}
	sha := ""
	if f.exists || row.ReadBlob != "" { // a file, or its removal: the commit that made it gets the check run
		if sha, err = introducedBy(ctx, gh, owner, name); err != nil {
			return githubapp.Classify(fmt.Errorf("finding the commit that changed %s of %s: %w", config.RepoFilePath, p.Repo, err))
		}
	}
	var apps []config.App
	var problems config.Problems
	switch {
	case f.refused != "":
		problems = config.Problems{{File: config.RepoFilePath, Message: f.refused}}
	default:
		apps, err = l.cfg.ParseRepoFile(p.Repo, config.RepoFilePath, f.content)
		if err != nil && !errors.As(err, &problems) {
			return jobs.Terminal(fmt.Errorf("checking %s of %s: %w", config.RepoFilePath, p.Repo, err))
		}
	}
	next := row
	next.ETag, next.ReadBlob, next.ReadSHA, next.Problems = f.etag, f.blob, sha, ""
	check := jobs.RepoConfigCheckRun{Repo: p.Repo, InstallationID: inst, SHA: sha, Blob: f.blob}
	if len(problems) > 0 {
		next.Problems = problems.Error()
		check.Problems = strings.Split(next.Problems, "\n")
		check.InForce = row.SHA
	} else {
		// A start re-reading the file in force, or finding none where there was none, is no new
		// version.
		if f.blob != row.Blob || next.Content != string(f.content) {
			next.Version, next.SHA, next.Blob, next.Content = row.Version+1, sha, f.blob, string(f.content)
		}
		check.Apps = appNames(apps)
	}
	var js []jobs.Job
	if sha != "" {
		js = append(js, checkRunJob(check))
	}
	if err := l.st.SaveRepoConfig(ctx, next, row.Version, js); err != nil {
		return err
	}
	if len(problems) > 0 {
		l.log.Warn("repository configuration refused; the last good version stays in force", "repo", p.Repo, "sha", sha,
			"problems", len(problems), "in_force", row.SHA)
		return nil
	}
	l.log.Info("repository configuration in force", "repo", p.Repo, "sha", next.SHA, "version", next.Version, "file", f.exists)
	l.sync.apply(p.Repo, next.Version, apps)
	return nil
}

// client is the installation client of the repository: the payload's installation, or the one
// GitHub names for the repository.
func (l *Loader) client(ctx context.Context, p jobs.RepoConfigLoad) (*github.Client, int64, error) {
	id := p.InstallationID
	if id == 0 {
		app, err := l.gh.App()
		if err != nil {
			return nil, 0, err
		}
		owner, name, _ := strings.Cut(p.Repo, "/")
		inst, _, err := app.Apps.GetRepositoryInstallation(ctx, owner, name)
		if err != nil {
			return nil, 0, githubapp.Classify(fmt.Errorf("finding the App's installation on %s: %w", p.Repo, err))
		}
		id = inst.GetID()
	}
	gh, err := l.gh.Installation(id)
	return gh, id, err
}

// read asks the contents API for the file on the default branch (no ref: GitHub's default
// branch, whatever pushed what elsewhere), conditionally when etag is set.
func read(ctx context.Context, gh *github.Client, owner, name, etag string) (file, error) {
	req, err := gh.NewRequest(ctx, http.MethodGet, fmt.Sprintf("repos/%s/%s/contents/%s", owner, name, config.RepoFilePath), nil)
	if err != nil {
		return file{}, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	var rc github.RepositoryContent
	resp, err := gh.Do(req, &rc)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	switch {
	case status == http.StatusNotModified:
		return file{unchanged: true, etag: etag}, nil
	case status == http.StatusNotFound:
		return file{etag: resp.Header.Get("ETag")}, nil
	case err != nil:
		return file{}, err
	}
	f := file{exists: true, blob: rc.GetSHA(), etag: resp.Header.Get("ETag")}
	switch {
	case rc.GetType() != "file":
		f.refused = fmt.Sprintf("is a %s, not a file", rc.GetType())
	case rc.GetSize() > config.MaxRepoFileBytes:
		f.refused = fmt.Sprintf("the file has %d bytes; at most %d are read", rc.GetSize(), config.MaxRepoFileBytes)
	case rc.GetEncoding() != "base64":
		f.refused = fmt.Sprintf("GitHub sent the file encoded as %q, not base64", rc.GetEncoding())
	default:
		content, err := rc.GetContent()
		if err != nil {
			return file{}, fmt.Errorf("decoding the file GitHub sent: %w", err)
		}
		f.content = []byte(content)
	}
	return f, nil
}

// introducedBy is the newest commit of the default branch that changed the file: the commit
// whose file this is (or that removed it); "" when none ever did.
func introducedBy(ctx context.Context, gh *github.Client, owner, name string) (string, error) {
	cs, _, err := gh.Repositories.ListCommits(ctx, owner, name, &github.CommitsListOptions{Path: config.RepoFilePath,
		ListOptions: github.ListOptions{PerPage: 1}})
	if err != nil || len(cs) == 0 {
		return "", err
	}
	return cs[0].GetSHA(), nil
}

func appNames(apps []config.App) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}
