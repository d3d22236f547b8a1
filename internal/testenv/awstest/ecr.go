package awstest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// ECR is the fake ECR: one registry per account, each holding repositories of images as ECR
// holds them: manifests (an image is its manifest's sha256 digest), tags that name them, and
// the layers (blobs) the manifests reference. Successful builds push images to it; the image
// APIs (BatchGetImage, the layer uploads, PutImage) copy them between repositories, and PutImage
// refuses a manifest whose layers the repository lacks, as ECR does.
//
// A repository belongs to the account in its URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME; a
// bare name is in Account). A caller reaches another account's repository only where that
// repository's policy lets the caller's account (AllowPull, AllowPush): the base credentials are
// Account's, an assumed role's credentials its ARN's account.
type ECR struct {
	env     *Env
	mu      sync.Mutex
	repos   map[repoKey]*repository
	uploads map[string]*upload   // upload id -> a layer upload in progress
	links   map[string]layerLink // download token -> the layer a presigned URL names
}

type repoKey struct{ account, name string }

func (k repoKey) String() string {
	return k.account + ".dkr.ecr." + Region + ".amazonaws.com/" + k.name
}

// repository is one ECR repository.
type repository struct {
	tags      map[string]string       // tag -> manifest digest
	manifests map[string]*manifestRec // digest -> manifest
	blobs     map[string][]byte       // layer or config digest -> content
	immutable bool
	pull      map[string]bool // accounts the repository policy lets pull
	push      map[string]bool // accounts the repository policy lets push
}

type manifestRec struct {
	body      []byte
	mediaType string
	pushed    time.Time
}

func newRepository() *repository {
	return &repository{tags: map[string]string{}, manifests: map[string]*manifestRec{}, blobs: map[string][]byte{},
		pull: map[string]bool{}, push: map[string]bool{}}
}

// refOf is the registry and name of an image repository reference: a full ECR URI
// (123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello) or a name in Account's registry.
func refOf(repository string) repoKey {
	if host, rest, ok := strings.Cut(repository, "/"); ok && strings.Contains(host, ".") {
		account, _, _ := strings.Cut(host, ".")
		return repoKey{account: account, name: rest}
	}
	return repoKey{account: Account, name: repository}
}

// repo returns the repository, making it when make is true. e.mu is held.
func (e *ECR) repo(k repoKey, create bool) *repository {
	r := e.repos[k]
	if r == nil && create {
		r = newRepository()
		e.repos[k] = r
	}
	return r
}

// push puts a built image under tag, as `docker push` does, and returns its digest. In a
// repository with immutable tags a tag that exists already is refused: the second result is
// ECR's message, and nothing changes.
func (e *ECR) push(repository, tag, seed string, at time.Time, layerSizes ...int) (string, string) {
	k := refOf(repository)
	m, blobs := fakeImage(seed+"\x00"+k.String()+"\x00"+tag, layerSizes)
	d := digest(string(m))
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(k, true)
	if old, exists := r.tags[tag]; exists && r.immutable && old != d {
		return "", fmt.Sprintf("tag invalid: The image tag '%s' already exists in the '%s' repository and cannot be overwritten "+
			"because the repository is immutable.", tag, k.name)
	}
	for bd, b := range blobs {
		r.blobs[bd] = b
	}
	if r.manifests[d] == nil {
		r.manifests[d] = &manifestRec{body: m, mediaType: mediaDockerManifest, pushed: at}
	}
	r.tags[tag] = d
	return d, ""
}

// Push puts an image with a tag into a repository (a full ECR URI or a name), creating it, and
// returns the image's digest ("" when the repository's tags are immutable and the tag exists).
func (e *ECR) Push(repository, tag string) string {
	d, _ := e.push(repository, tag, "seed", e.env.Now())
	return d
}

// PushLayers is Push of an image whose own layers have these sizes in bytes (beside a small base
// layer every pushed image shares), to copy large layers in parts.
func (e *ECR) PushLayers(repository, tag string, sizes ...int) string {
	d, _ := e.push(repository, tag, "seed", e.env.Now(), sizes...)
	return d
}

// SetImmutable gives a repository (a full ECR URI or a name) immutable tags
// (imageTagMutability IMMUTABLE): a push of a tag it has fails, as docker push does against ECR,
// and a build that pushes one fails in POST_BUILD.
func (e *ECR) SetImmutable(repository string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.repo(refOf(repository), true).immutable = true
}

// AllowPull gives the repository a policy that lets account pull from it (ecr:BatchGetImage,
// ecr:GetDownloadUrlForLayer, ecr:BatchCheckLayerAvailability, ecr:DescribeImages), as a
// cross-account repository policy does.
func (e *ECR) AllowPull(repository, account string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.repo(refOf(repository), true).pull[account] = true
}

// AllowPush lets account push to the repository too (the layer uploads and PutImage).
func (e *ECR) AllowPush(repository, account string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(refOf(repository), true)
	r.pull[account], r.push[account] = true, true
}

// Digest is the digest of a tag in a repository, "" if there is none.
func (e *ECR) Digest(repository, tag string) string {
	e.env.CodeBuild.settle()
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.repo(refOf(repository), false); r != nil {
		return r.tags[tag]
	}
	return ""
}

// Has reports whether the repository holds the image with this digest, with every layer its
// manifest references: an image a cluster could pull.
func (e *ECR) Has(repository, digest string) bool {
	e.env.CodeBuild.settle()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(refOf(repository), false)
	if r == nil || r.manifests[digest] == nil {
		return false
	}
	return len(r.missing(r.manifests[digest].body)) == 0
}

// Tags lists the tags that name the image with this digest in the repository.
func (e *ECR) Tags(repository, digest string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	if r := e.repo(refOf(repository), false); r != nil {
		for t, d := range r.tags {
			if d == digest {
				out = append(out, t)
			}
		}
	}
	sort.Strings(out)
	return out
}

// AddRepository makes an empty repository (a full ECR URI or a name) exist.
func (e *ECR) AddRepository(repository string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.repo(refOf(repository), true)
}

// access says what a caller of account may do with a repository: the registry's own account
// may do anything, another account what the repository policy lets it. e.mu is held.
func (e *ECR) access(k repoKey, caller, op string) (*repository, *apiError) {
	r := e.repos[k]
	if r == nil {
		return nil, &apiError{code: "RepositoryNotFoundException", msg: fmt.Sprintf(
			"The repository with name '%s' does not exist in the registry with id '%s'", k.name, k.account)}
	}
	if caller == k.account {
		return r, nil
	}
	allowed := r.pull[caller]
	if pushOps[op] {
		allowed = r.push[caller]
	}
	if !allowed {
		return nil, &apiError{code: "AccessDeniedException", msg: fmt.Sprintf(
			"User: arn:aws:sts::%s:assumed-role/... is not authorized to perform: ecr:%s on resource: arn:aws:ecr:%s:%s:repository/%s "+
				"because no resource-based policy allows the ecr:%s action", caller, op, Region, k.account, k.name, op)}
	}
	return r, nil
}

// pushOps are the operations that write to a repository.
var pushOps = map[string]bool{"InitiateLayerUpload": true, "UploadLayerPart": true, "CompleteLayerUpload": true, "PutImage": true}

// handle answers an ECR operation for a caller of account caller.
func (e *ECR) handle(op string, body []byte, caller string) (any, *apiError) {
	var in ecrRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &apiError{code: "InvalidParameterException", msg: err.Error()}
	}
	e.env.CodeBuild.settle() // builds that ended since the last look have pushed their images
	now := e.env.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if op == "DescribeRepositories" {
		return e.describeRepositories(in, caller, now)
	}
	k := repoKey{account: in.RegistryID, name: in.RepositoryName}
	if k.account == "" {
		k.account = caller // without a registry id, ECR looks in the caller's own registry
	}
	r, ae := e.access(k, caller, op)
	if ae != nil {
		return nil, ae
	}
	switch op {
	case "DescribeImages":
		return describeImages(k, r, in)
	case "BatchGetImage":
		return batchGetImage(k, r, in)
	case "PutImage":
		return putImage(k, r, in, now)
	case "BatchCheckLayerAvailability":
		return checkLayers(r, in)
	case "GetDownloadUrlForLayer":
		return e.downloadURL(k, r, in)
	case "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload":
		return e.layerUpload(op, k, r, in)
	}
	return nil, &apiError{code: "UnknownOperationException", msg: op}
}

// ecrRequest holds the members of every ECR request the fake answers.
type ecrRequest struct {
	RegistryID      string   `json:"registryId"`
	RepositoryName  string   `json:"repositoryName"`
	RepositoryNames []string `json:"repositoryNames"`
	ImageIDs        []struct {
		ImageTag    string `json:"imageTag"`
		ImageDigest string `json:"imageDigest"`
	} `json:"imageIds"`
	AcceptedMediaTypes []string `json:"acceptedMediaTypes"`
	ImageManifest      string   `json:"imageManifest"`
	ManifestMediaType  string   `json:"imageManifestMediaType"`
	ImageTag           string   `json:"imageTag"`
	ImageDigest        string   `json:"imageDigest"`
	LayerDigests       []string `json:"layerDigests"`
	LayerDigest        string   `json:"layerDigest"`
	UploadID           string   `json:"uploadId"`
	PartFirstByte      *int64   `json:"partFirstByte"`
	PartLastByte       *int64   `json:"partLastByte"`
	LayerPartBlob      []byte   `json:"layerPartBlob"` // base64 on the wire
}

func describeImages(k repoKey, r *repository, in ecrRequest) (any, *apiError) {
	// An image is its digest; its tags are every tag that points at it.
	tags := map[string][]string{}
	for _, t := range sortedKeys(r.tags) {
		tags[r.tags[t]] = append(tags[r.tags[t]], t)
	}
	var digests []string
	if len(in.ImageIDs) == 0 {
		digests = sortedKeys(r.manifests)
		sort.SliceStable(digests, func(i, j int) bool { return r.manifests[digests[i]].pushed.Before(r.manifests[digests[j]].pushed) })
	}
	for _, id := range in.ImageIDs {
		d := id.ImageDigest
		if id.ImageTag != "" {
			td, ok := r.tags[id.ImageTag]
			if !ok || (d != "" && d != td) {
				return nil, &apiError{code: "ImageNotFoundException", msg: fmt.Sprintf(
					"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
					orNull(d), id.ImageTag, k.name, k.account)}
			}
			d = td
		} else if r.manifests[d] == nil {
			return nil, &apiError{code: "ImageNotFoundException", msg: fmt.Sprintf(
				"The image with imageId {imageDigest:'%s', imageTag:'null'} does not exist within the repository with name '%s' in the registry with id '%s'",
				d, k.name, k.account)}
		}
		digests = append(digests, d)
	}
	details := []any{}
	for _, d := range digests {
		m := r.manifests[d]
		details = append(details, map[string]any{"registryId": k.account, "repositoryName": k.name,
			"imageDigest": d, "imageTags": tags[d], "imageSizeInBytes": r.size(m.body), "imagePushedAt": epoch(m.pushed),
			"imageManifestMediaType": m.mediaType})
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
func (e *ECR) describeRepositories(in ecrRequest, caller string, now time.Time) (any, *apiError) {
	registry := in.RegistryID
	if registry == "" {
		registry = caller
	}
	repos := []any{}
	for _, name := range in.RepositoryNames {
		k := repoKey{account: registry, name: name}
		r, ae := e.access(k, caller, "DescribeRepositories")
		if ae != nil {
			return nil, ae
		}
		mutability := "MUTABLE"
		if r.immutable {
			mutability = "IMMUTABLE"
		}
		repos = append(repos, map[string]any{"repositoryName": name, "registryId": registry,
			"repositoryArn": "arn:aws:ecr:" + Region + ":" + registry + ":repository/" + name,
			"repositoryUri": k.String(), "createdAt": epoch(now), "imageTagMutability": mutability})
	}
	return map[string]any{"repositories": repos}, nil
}
