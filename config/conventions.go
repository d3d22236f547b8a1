package config

import (
	"net/url"
	"strings"
)

// MergeQueueBranch reports whether branch is one GitHub's merge queue makes for a merge group
// (gh-readonly-queue/<base>/pr-<number>-<sha>): a commit there is a candidate the queue tests,
// not a merge, and the branch is deleted once the group is merged or dropped.
func MergeQueueBranch(branch string) bool {
	return strings.HasPrefix(strings.TrimPrefix(branch, "refs/heads/"), "gh-readonly-queue/")
}

// maxEnvironmentURL bounds an environment URL: GitHub keeps it with every Deployment status.
const maxEnvironmentURL = 2000

// environmentURL checks an app's environment_url on a stage: absolute https with a host, no
// user name or password (it is shown to everyone who can read the repository), no fragment.
func (v *validator) environmentURL(field, raw string) {
	if raw == "" {
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(field, "want an https URL such as https://test.hello.example.com/, got %q", raw)
	case u.Scheme != "https":
		v.add(field, "want an https URL (GitHub links it on every Deployment), got scheme %q in %q", u.Scheme, raw)
	case u.Host == "" || u.Hostname() == "":
		v.add(field, "want an absolute https URL with a host, got %q", raw)
	case u.User != nil:
		v.add(field, "must not carry a user name or password: everyone who can read the repository sees it")
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		v.add(field, "want a URL without a #fragment, got %q", raw)
	case len(raw) > maxEnvironmentURL:
		v.add(field, "want at most %d characters, got %d", maxEnvironmentURL, len(raw))
	case strings.ContainsAny(raw, " \t\r\n<>\"`"):
		v.add(field, "want a URL without spaces, quotes or angle brackets, got %q", raw)
	}
}
