package awstest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// ECR is the fake ECR: successful builds push images to it, and DescribeImages finds them by
// tag or digest.
type ECR struct {
	env       *Env
	mu        sync.Mutex
	repos     map[string]map[string]ecrImage // repository name -> tag -> image
	immutable map[string]bool                // repositories whose tags cannot be overwritten
}

type ecrImage struct {
	digest string
	pushed time.Time
}

// repoName is the repository name in an image repository reference: a full ECR URI
// (123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello) or a name.
func repoName(repository string) string {
	if host, rest, ok := strings.Cut(repository, "/"); ok && strings.Contains(host, ".") {
		return rest
	}
	return repository
}

// push puts an image under tag, as `docker push` does, and returns its digest. In a repository
// with immutable tags a tag that exists already is refused: the second result is ECR's message,
// and nothing changes.
func (e *ECR) push(repository, tag, seed string, at time.Time) (string, string) {
	name := repoName(repository)
	d := digest(seed + "\x00" + name + "\x00" + tag)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.repos[name] == nil {
		e.repos[name] = map[string]ecrImage{}
	}
	if _, exists := e.repos[name][tag]; exists && e.immutable[name] {
		return "", fmt.Sprintf("tag invalid: The image tag '%s' already exists in the '%s' repository and cannot be overwritten "+
			"because the repository is immutable.", tag, name)
	}
	e.repos[name][tag] = ecrImage{digest: d, pushed: at}
	return d, ""
}

// Push puts an image with a tag into a repository (a full ECR URI or a name), creating it, and
// returns the image's digest ("" when the repository's tags are immutable and the tag exists).
func (e *ECR) Push(repository, tag string) string {
	d, _ := e.push(repository, tag, "seed", e.env.Now())
	return d
}

// SetImmutable gives a repository (a full ECR URI or a name) immutable tags
// (imageTagMutability IMMUTABLE): a push of a tag it has fails, as docker push does against ECR,
// and a build that pushes one fails in POST_BUILD.
func (e *ECR) SetImmutable(repository string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.immutable == nil {
		e.immutable = map[string]bool{}
	}
	e.immutable[repoName(repository)] = true
}

// Digest is the digest of a tag in a repository, "" if there is none.
func (e *ECR) Digest(repository, tag string) string {
	e.env.CodeBuild.settle()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.repos[repoName(repository)][tag].digest
}

// AddRepository makes an empty repository (a full ECR URI or a name) exist.
func (e *ECR) AddRepository(repository string) {
	name := repoName(repository)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.repos[name] == nil {
		e.repos[name] = map[string]ecrImage{}
	}
}

func (e *ECR) handle(op string, body []byte) (any, *apiError) {
	if op == "DescribeRepositories" {
		return e.describeRepositories(body)
	}
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		ImageIDs       []struct {
			ImageTag    string `json:"imageTag"`
			ImageDigest string `json:"imageDigest"`
		} `json:"imageIds"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{code: "InvalidParameterException", msg: err.Error()}
	}
	e.env.CodeBuild.settle() // builds that ended since the last look have pushed their images
	e.mu.Lock()
	defer e.mu.Unlock()
	repo, ok := e.repos[in.RepositoryName]
	if !ok || (in.RegistryID != "" && in.RegistryID != Account) {
		return nil, &apiError{code: "RepositoryNotFoundException", msg: fmt.Sprintf(
			"The repository with name '%s' does not exist in the registry with id '%s'", in.RepositoryName, Account)}
	}
	// An image is its digest; its tags are every tag that points at it.
	tags := map[string][]string{}
	pushed := map[string]time.Time{}
	for _, t := range sortedKeys(repo) {
		img := repo[t]
		tags[img.digest] = append(tags[img.digest], t)
		if img.pushed.After(pushed[img.digest]) {
			pushed[img.digest] = img.pushed
		}
	}
	var digests []string
	if len(in.ImageIDs) == 0 {
		digests = sortedKeys(tags)
		sort.SliceStable(digests, func(i, j int) bool { return pushed[digests[i]].Before(pushed[digests[j]]) })
	}
	for _, id := range in.ImageIDs {
		d := id.ImageDigest
		if id.ImageTag != "" {
			img, ok := repo[id.ImageTag]
			if !ok || (d != "" && d != img.digest) {
				return nil, &apiError{code: "ImageNotFoundException", msg: fmt.Sprintf(
					"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					orNull(d), id.ImageTag, in.RepositoryName, Account)}
			}
			d = img.digest
		} else if _, ok := tags[d]; !ok {
			return nil, &apiError{code: "ImageNotFoundException", msg: fmt.Sprintf(
				"The image with imageId {imageDigest:'%s', imageTag:'null'} does not exist within the repository with name '%s' in the registry with id '%s'",
				d, in.RepositoryName, Account)}
		}
		digests = append(digests, d)
	}
	details := []any{}
	for _, d := range digests {
		details = append(details, map[string]any{"registryId": Account, "repositoryName": in.RepositoryName,
			"imageDigest": d, "imageTags": tags[d], "imageSizeInBytes": 52_428_800, "imagePushedAt": epoch(pushed[d]),
			"imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"})
	}
	return map[string]any{"imageDetails": details}, nil
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// describeRepositories answers DescribeRepositories for the repositories named (the only way
// Stagecoach calls it).
func (e *ECR) describeRepositories(body []byte) (any, *apiError) {
	var in struct {
		RegistryID      string   `json:"registryId"`
		RepositoryNames []string `json:"repositoryNames"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{code: "InvalidParameterException", msg: err.Error()}
	}
	e.env.CodeBuild.settle()
	now := e.env.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	repos := []any{}
	for _, name := range in.RepositoryNames {
		if _, ok := e.repos[name]; !ok || (in.RegistryID != "" && in.RegistryID != Account) {
			return nil, &apiError{code: "RepositoryNotFoundException", msg: fmt.Sprintf(
				"The repository with name '%s' does not exist in the registry with id '%s'", name, Account)}
		}
		repos = append(repos, map[string]any{"repositoryName": name, "registryId": Account,
			"repositoryArn": "arn:aws:ecr:" + Region + ":" + Account + ":repository/" + name,
			"repositoryUri": Account + ".dkr.ecr." + Region + ".amazonaws.com/" + name,
			"createdAt":     epoch(now), "imageTagMutability": "IMMUTABLE"})
	}
	return map[string]any{"repositories": repos}, nil
}
