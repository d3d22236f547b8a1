package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-github/v88/github"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/report"
)

// github checks the App, its installations and the stage branches.
func (d *doctor) github(ctx context.Context) {
	const area = AreaGitHub
	m, err := parseManifest(d.o.Manifest)
	if err != nil {
		d.add(area, "App manifest", Fail, err.Error(), "pass the App's manifest with --manifest app.yml")
		return
	}
	if d.o.GitHub == nil {
		d.add(area, "GitHub App", Fail, "no GitHub App is configured (github.app_id and github.private_key_file)",
			"create it with `stagecoach setup` and add what it prints to the configuration")
		return
	}
	client, err := d.o.GitHub.App()
	if err != nil {
		d.add(area, "GitHub App", Fail, err.Error(), "")
		return
	}
	app, _, err := client.Apps.Get(ctx, "")
	if err != nil {
		d.add(area, "GitHub App", Fail, "GitHub refused the App's credentials: "+ghError(err),
			fmt.Sprintf("check github.app_id (%d), github.private_key_file (a key of this App, not deleted) and github.api_url (%s)",
				d.cfg.GitHub.AppID, d.cfg.GitHub.APIURL))
		return
	}
	slug := app.GetSlug()
	settings := fmt.Sprintf("the App's settings on GitHub (%s, Permissions & events)", app.GetHTMLURL())
	perms := permissionMap(app.GetPermissions())
	d.appPermissions(slug, settings, m.Permissions, perms)
	d.appEvents(slug, settings, m.Events, app.Events)

	web := strings.TrimSuffix(report.WebURL(d.cfg.GitHub.APIURL), "/") + "/"
	for _, repo := range repos(d.cfg) {
		id, ok := d.installation(ctx, client, web, slug, repo, perms)
		if !ok {
			continue
		}
		inst, err := d.o.GitHub.Installation(id)
		if err != nil {
			d.add(area, repo, Fail, err.Error(), "")
			continue
		}
		for i := range d.cfg.Stages {
			if st := &d.cfg.Stages[i]; guarded(st) && deploys(d.cfg, repo, st.Name) {
				d.branch(ctx, inst, web, slug, repo, st)
			}
		}
	}
}

func (d *doctor) appPermissions(slug, settings string, want, has map[string]string) {
	name := "App " + slug + " permissions"
	short, extra := comparePermissions(want, has)
	switch {
	case len(short) > 0:
		d.add(AreaGitHub, name, Fail, "missing or too low: "+strings.Join(short, ", "),
			"give the App these permissions in "+settings+", then accept them on each installation")
	case len(extra) > 0:
		detail := "beyond app.yml: " + strings.Join(extra, ", ")
		if has["administration"] == "read" {
			detail += " (administration: read lets doctor read classic branch protection; the service does not use it)"
		}
		d.add(AreaGitHub, name, Warn, detail, "remove what Stagecoach does not use in "+settings)
	default:
		d.add(AreaGitHub, name, OK, "as app.yml asks: "+listPermissions(want), "")
	}
}

func (d *doctor) appEvents(slug, settings string, want, has []string) {
	name := "App " + slug + " events"
	var missing, extra []string
	for _, e := range want {
		if !slices.Contains(has, e) {
			missing = append(missing, e)
		}
	}
	for _, e := range has {
		if !slices.Contains(want, e) {
			extra = append(extra, e)
		}
	}
	switch {
	case len(missing) > 0:
		d.add(AreaGitHub, name, Fail, "not subscribed to "+strings.Join(missing, ", ")+": those deliveries never come",
			"subscribe the App to them in "+settings)
	case len(extra) > 0:
		d.add(AreaGitHub, name, Warn, "also subscribed to "+strings.Join(extra, ", ")+", which Stagecoach ignores",
			"unsubscribe them in "+settings)
	default:
		d.add(AreaGitHub, name, OK, "subscribed to "+strings.Join(want, ", "), "")
	}
}

// installation checks that an installation of the App covers repo, is not suspended and has
// accepted the App's permissions (want: an installation keeps the old ones until an owner
// accepts new ones); it returns the installation's id when it covers repo.
func (d *doctor) installation(ctx context.Context, client *github.Client, web, slug, repo string, want map[string]string) (int64, bool) {
	owner, name, _ := strings.Cut(repo, "/")
	inst, _, err := client.Apps.GetRepositoryInstallation(ctx, owner, name)
	if status(err) == http.StatusNotFound {
		d.add(AreaGitHub, repo, Fail, "no installation of the App covers it: its webhooks never come and nothing can be reported; its branches were not checked",
			fmt.Sprintf("install the App on %s, or add the repository to its installation: %sapps/%s/installations/new", owner, web, slug))
		return 0, false
	}
	if err != nil {
		d.add(AreaGitHub, repo, Fail, "could not ask GitHub for its installation: "+ghError(err), "")
		return 0, false
	}
	short, _ := comparePermissions(want, permissionMap(inst.GetPermissions()))
	account := inst.GetAccount().GetLogin()
	switch {
	case inst.SuspendedAt != nil:
		d.add(AreaGitHub, repo, Fail, fmt.Sprintf("installation %d (%s) is suspended", inst.GetID(), account),
			"unsuspend it in "+account+"'s settings (Installed GitHub Apps)")
		return 0, false
	case len(short) > 0:
		d.add(AreaGitHub, repo, Fail, fmt.Sprintf("installation %d (%s) has not accepted the App's permissions: %s", inst.GetID(), account, strings.Join(short, ", ")),
			"an owner of "+account+" accepts the App's new permissions (Installed GitHub Apps, Review request)")
	default:
		d.add(AreaGitHub, repo, OK, fmt.Sprintf("covered by installation %d (%s, %s repositories)", inst.GetID(), account, inst.GetRepositorySelection()), "")
	}
	return inst.GetID(), true
}

// blockingRules are the rule types that refuse the App's forced update of a branch unless it
// may bypass them.
var blockingRules = []string{"update", "non_fast_forward", "pull_request", "required_status_checks",
	"required_deployments", "required_linear_history", "required_signatures", "merge_queue"}

// branch checks that only the App can push to a guarded stage's branch: a ruleset that restricts
// updates and that the App can bypass, else classic branch protection that restricts pushes to
// the App.
func (d *doctor) branch(ctx context.Context, client *github.Client, web, slug, repo string, st *config.Stage) {
	name := repo + " branch " + st.Branch
	why := fmt.Sprintf("a push to it would deploy stage %s past %s", st.Name, guardedBy(st))
	owner, rname, _ := strings.Cut(repo, "/")
	rules, _, err := client.Repositories.ListRulesForBranch(ctx, owner, rname, st.Branch, nil)
	if err != nil {
		d.add(AreaGitHub, name, Fail, "could not read the rules for the branch: "+ghError(err), "")
		return
	}
	types := ruleTypes(rules)
	var blocked, restricting []string
	for _, id := range sortedIDs(types) {
		rs, _, err := client.Repositories.GetRuleset(ctx, owner, rname, id, true)
		if err != nil {
			d.add(AreaGitHub, name, Fail, fmt.Sprintf("could not read ruleset %d: %s", id, ghError(err)), "")
			return
		}
		label := fmt.Sprintf("%q (%s)", rs.Name, strings.Join(types[id], ", "))
		if b := rs.GetCurrentUserCanBypass(); b == nil || (*b != github.BypassModeAlways && *b != github.BypassModeExempt) {
			blocked = append(blocked, label)
		}
		if slices.Contains(types[id], "update") {
			restricting = append(restricting, fmt.Sprintf("%q (%s%s/settings/rules/%d)", rs.Name, web, repo, id))
		}
	}
	switch {
	case len(blocked) > 0:
		d.add(AreaGitHub, name, Fail, "the App cannot bypass ruleset "+strings.Join(blocked, ", ")+
			": /promote moves the branch with a forced update, which those rules refuse",
			"add the App ("+slug+") to the bypass list of those rulesets, with Always")
	case len(restricting) > 0:
		d.add(AreaGitHub, name, OK, "ruleset "+strings.Join(restricting, ", ")+
			" lets only its bypass actors update it, and the App is one (see that nobody else is)", "")
	default:
		d.classicProtection(ctx, client, slug, name, why, owner, rname, st.Branch)
	}
}

// classicProtection checks a branch that no ruleset restricts: its classic branch protection
// must restrict pushes to the App.
func (d *doctor) classicProtection(ctx context.Context, client *github.Client, slug, name, why, owner, repo, branch string) {
	const rulesetFix = "add a ruleset on refs/heads/%s: Restrict updates, with the App (%s) the only bypass actor (Always)"
	p, _, err := client.Repositories.GetBranchProtection(ctx, owner, repo, branch)
	switch {
	case errors.Is(err, github.ErrBranchNotProtected):
		d.add(AreaGitHub, name, Fail, "not protected: anyone with write access can push to it, and "+why, fmt.Sprintf(rulesetFix, branch, slug))
		return
	case status(err) == http.StatusForbidden:
		d.add(AreaGitHub, name, Fail, "no ruleset restricts it, and GitHub shows classic branch protection only to Apps with administration: read, so whether only the App can push is unknown",
			fmt.Sprintf(rulesetFix, branch, slug)+" (rulesets the App can read); or grant the App administration: read")
		return
	case status(err) == http.StatusNotFound:
		d.add(AreaGitHub, name, Fail, "no such branch", "create it (the first /promote needs it to exist)")
		return
	case err != nil:
		d.add(AreaGitHub, name, Fail, "could not read its branch protection: "+ghError(err), "")
		return
	}
	var problems []string
	if r := p.Restrictions; r == nil {
		problems = append(problems, "pushes are not restricted: anyone with write access can push, and "+why)
	} else {
		var others []string
		for _, u := range r.Users {
			others = append(others, "user "+u.GetLogin())
		}
		for _, t := range r.Teams {
			others = append(others, "team "+t.GetSlug())
		}
		for _, a := range r.Apps {
			if a.GetSlug() != slug {
				others = append(others, "app "+a.GetSlug())
			}
		}
		if len(others) > 0 {
			problems = append(problems, "also pushable by "+strings.Join(others, ", "))
		}
		if !slices.ContainsFunc(r.Apps, func(a *github.App) bool { return a.GetSlug() == slug }) {
			problems = append(problems, "the App may not push: /promote would be refused")
		}
	}
	if ea := p.GetEnforceAdmins(); ea == nil || !ea.Enabled {
		problems = append(problems, "administrators can push past it")
	}
	if p.AllowForcePushes == nil || !p.AllowForcePushes.Enabled {
		problems = append(problems, "force pushes are refused, and /promote moves the branch with a forced update")
	}
	if rv := p.RequiredPullRequestReviews; rv != nil && (rv.BypassPullRequestAllowances == nil ||
		!slices.ContainsFunc(rv.BypassPullRequestAllowances.Apps, func(a *github.App) bool { return a.GetSlug() == slug })) {
		problems = append(problems, "it requires pull requests, which the App's update of the branch is not")
	}
	if len(problems) > 0 {
		d.add(AreaGitHub, name, Fail, "branch protection: "+strings.Join(problems, "; "),
			"in its branch protection: restrict pushes to the App ("+slug+") alone, do not allow bypassing, allow force pushes; or "+
				fmt.Sprintf(rulesetFix, branch, slug))
		return
	}
	d.add(AreaGitHub, name, OK, "branch protection lets only the App push (force pushes included, administrators too)", "")
}

// ruleTypes maps each ruleset that puts a blocking rule on the branch to those rules' types.
func ruleTypes(r *github.BranchRules) map[int64][]string {
	out := map[int64][]string{}
	if r == nil {
		return out
	}
	add := func(t string, id int64) {
		if !slices.Contains(out[id], t) {
			out[id] = append(out[id], t)
		}
	}
	for _, x := range r.Update {
		add("update", x.RulesetID)
	}
	for _, x := range r.NonFastForward {
		add("non_fast_forward", x.RulesetID)
	}
	for _, x := range r.PullRequest {
		add("pull_request", x.RulesetID)
	}
	for _, x := range r.RequiredStatusChecks {
		add("required_status_checks", x.RulesetID)
	}
	for _, x := range r.RequiredDeployments {
		add("required_deployments", x.RulesetID)
	}
	for _, x := range r.RequiredLinearHistory {
		add("required_linear_history", x.RulesetID)
	}
	for _, x := range r.RequiredSignatures {
		add("required_signatures", x.RulesetID)
	}
	for _, x := range r.MergeQueue {
		add("merge_queue", x.RulesetID)
	}
	for id := range out {
		slices.SortFunc(out[id], func(a, b string) int { return slices.Index(blockingRules, a) - slices.Index(blockingRules, b) })
	}
	return out
}

func sortedIDs(m map[int64][]string) []int64 {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// guarded reports whether a stage's branch must be the App's alone: the stage has promoters or
// a stage order, which a push to its branch would bypass.
func guarded(st *config.Stage) bool {
	return st.Branch != "" && (!st.Promoters.Empty() || st.PromoteFrom != "")
}

func guardedBy(st *config.Stage) string {
	switch {
	case st.PromoteFrom != "" && !st.Promoters.Empty():
		return "its promoters and the stage order (promote_from " + st.PromoteFrom + ")"
	case st.PromoteFrom != "":
		return "the stage order (promote_from " + st.PromoteFrom + ")"
	}
	return "its promoters"
}

// repos are the configured repositories, once each, in the configuration's order.
func repos(cfg *config.Config) []string {
	var out []string
	for _, app := range cfg.Apps {
		if !slices.Contains(out, app.Repo) {
			out = append(out, app.Repo)
		}
	}
	return out
}

// deploys reports whether an app of repo deploys to stage.
func deploys(cfg *config.Config, repo, stage string) bool {
	for _, app := range cfg.Apps {
		if _, ok := app.Stages[stage]; ok && app.Repo == repo {
			return true
		}
	}
	return false
}

// permissionMap turns go-github's permissions into name -> level.
func permissionMap(p *github.InstallationPermissions) map[string]string {
	out := map[string]string{}
	if p == nil {
		return out
	}
	b, err := json.Marshal(p)
	if err == nil {
		_ = json.Unmarshal(b, &out)
	}
	return out
}

// status is the HTTP status of a GitHub error, 0 for none.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

// ghError is GitHub's message for an error, without the request's URL and headers.
func ghError(err error) string {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return fmt.Sprintf("%d %s", er.Response.StatusCode, er.Message)
	}
	return err.Error()
}
