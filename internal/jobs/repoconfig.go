package jobs

import "strings"

// Kinds of the jobs of repositories' own configuration files (package repoconfig).
const (
	// KindRepoConfigLoad reads a repository's own configuration file from its default branch
	// and puts it in force when it is good. Payload: RepoConfigLoad.
	KindRepoConfigLoad = "repoconfig.load"
	// KindRepoConfigCheckRun reports what became of a repository's file as the check run
	// stagecoach/config on the commit that brought it. Payload: RepoConfigCheckRun.
	KindRepoConfigCheckRun = "repoconfig.checkrun"
)

// RepoConfigLoad is the payload of KindRepoConfigLoad.
type RepoConfigLoad struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"` // 0: looked up with the App's JWT
	// SHA is the default branch's head that asked for the read (a push's after); the read
	// itself always takes the default branch as GitHub has it then.
	SHA      string `json:"sha,omitempty"`
	Reason   string `json:"reason"`             // push, start or refresh
	Delivery string `json:"delivery,omitempty"` // the push's
}

// RepoConfigLane is the lane of repo's loads: one at a time, in the order they were recorded,
// on whichever replica claims them.
func RepoConfigLane(repo string) string { return "repoconfig:" + strings.ToLower(repo) }

// RepoConfigLoadJob is the job that reads repo's file; key tells one request from another (a
// push's after, or a time bucket), so the same request is recorded once.
func RepoConfigLoadJob(p RepoConfigLoad, key string) Job {
	return Job{Kind: KindRepoConfigLoad, Key: "repoconfig.load:" + strings.ToLower(p.Repo) + ":" + key,
		Lane: RepoConfigLane(p.Repo), Payload: mustJSON(p)}
}

// RepoConfigCheckRun is the payload of KindRepoConfigCheckRun.
type RepoConfigCheckRun struct {
	Repo           string `json:"repo"`
	InstallationID int64  `json:"installation_id,omitempty"`
	SHA            string `json:"sha"`  // the commit that brought the file (or removed it)
	Blob           string `json:"blob"` // the file's blob; "" when the commit removed it
	// Problems are why the file was refused, each `file:line: field: message`; none when it
	// is in force.
	Problems []string `json:"problems,omitempty"`
	// Apps are the apps the file configures (in force) or would have (refused).
	Apps []string `json:"apps,omitempty"`
	// InForce names the commit whose file stays in force when this one was refused ("" for
	// the server's configuration alone).
	InForce string `json:"in_force,omitempty"`
}
