package amazon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// Copying an image between repositories, as artifact: promote does when a stage's registry is not
// the one the image was tested from, uses only ECR's image APIs. ECR takes a manifest (PutImage)
// only once every blob it references (the config and each layer) is in the target repository,
// and a list of images only once each image it lists is: it has no server-side copy. So the copy
// reads the manifest (BatchGetImage), asks the target which blobs it lacks
// (BatchCheckLayerAvailability), streams each missing one from the source's download URL
// (GetDownloadUrlForLayer, a presigned S3 URL) into a layer upload (InitiateLayerUpload,
// UploadLayerPart in the parts ECR asks for, CompleteLayerUpload), and puts the manifest last.
// Everything it does is idempotent: an image or blob the target has is not copied again, so a copy
// stopped anywhere is finished by running it again.

// manifestTypes are the manifest media types a copy accepts and keeps as they are.
var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.index.v1+json",
}

// Part sizes of a layer upload: ECR takes parts of at least 5 MiB (but the last) and at most
// 20 MiB (its model's LayerPartBlob), and says which size it expects.
const (
	minPart = 5 << 20
	maxPart = 20 << 20
)

// Repository is an ECR repository as an image reference names it: its registry (an account id)
// and its name.
type Repository struct{ Registry, Name string }

// ParseRepository reads ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME; a bare name has no registry
// (the caller's own).
func ParseRepository(uri string) Repository {
	host, rest, ok := strings.Cut(uri, "/")
	if !ok {
		return Repository{Name: uri}
	}
	// The registry is the account in the host: without it ECR looks in the caller's own
	// account, and prod's role often lives in another account than the images it runs.
	if account, _, _ := strings.Cut(host, "."); len(account) == 12 && strings.Trim(account, "0123456789") == "" {
		return Repository{Registry: account, Name: rest}
	}
	return Repository{Name: rest}
}

func (r Repository) registry() *string {
	if r.Registry == "" {
		return nil
	}
	return aws.String(r.Registry)
}

func (r Repository) String() string {
	if r.Registry == "" {
		return r.Name
	}
	return r.Registry + "/" + r.Name
}

// CopyInput is an image to copy: the repositories as URIs, the image's digest, and the tag it
// gets in the target ("" for none).
type CopyInput struct {
	Source, Target string
	Digest         string
	Tag            string
}

// Copied says what a copy did.
type Copied struct {
	Already bool  // the target had the image: nothing was copied
	Blobs   int   // blobs (layers and configs) uploaded
	Reused  int   // blobs the target had already
	Bytes   int64 // bytes uploaded
}

// CopyImage makes the image with digest in.Digest exist in in.Target as it is in in.Source, with
// the session's credentials for both: the target stage's tier reads the source (a cross-account
// repository policy lets it) and writes its own registry. The manifest's digest is checked before
// anything is written, and the image PutImage stored after: what the target holds is exactly
// what was tested.
func (a *AWS) CopyImage(ctx context.Context, s Session, in CopyInput) (Copied, error) {
	cfg, err := a.configFor(s)
	if err != nil {
		return Copied{}, err
	}
	c := copier{ecr: ecr.NewFromConfig(cfg), http: a.downloads, tier: s.Tier,
		src: ParseRepository(in.Source), dst: ParseRepository(in.Target)}
	var out Copied
	err = c.image(ctx, in.Digest, in.Tag, &out, 0)
	return out, err
}

type copier struct {
	ecr      *ecr.Client
	http     *http.Client
	tier     string
	src, dst Repository
}

// image copies one manifest (and first, what it references) unless the target has it.
func (c *copier) image(ctx context.Context, digest, tag string, out *Copied, depth int) error {
	if depth > 1 {
		return &RefusedError{What: fmt.Sprintf("image %s lists a list of images: ECR holds no such image", digest)}
	}
	if _, _, found, err := c.manifest(ctx, c.dst, digest); err != nil {
		return err
	} else if found {
		if depth == 0 {
			out.Already = true
		}
		return nil
	}
	body, mediaType, found, err := c.manifest(ctx, c.src, digest)
	if err != nil {
		return err
	}
	if !found {
		return &NotFoundError{What: "image " + c.src.Name + "@" + digest, Where: "ECR registry " + c.src.Registry, Tier: c.tier}
	}
	if got := sha256Digest(body); got != digest {
		return &RefusedError{What: fmt.Sprintf("the manifest %s answered for %s has digest %s: it is not the image that was tested", c.src, digest, got)}
	}
	var doc struct {
		Config    *struct{ Digest string }  `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return &RefusedError{What: fmt.Sprintf("the manifest of %s@%s is not JSON: %v", c.src, digest, err)}
	}
	for _, m := range doc.Manifests { // a list of images for several platforms: each image first
		if err := c.image(ctx, m.Digest, "", out, depth+1); err != nil {
			return err
		}
	}
	var blobs []string
	if doc.Config != nil {
		blobs = append(blobs, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		blobs = append(blobs, l.Digest)
	}
	missing, err := c.missing(ctx, blobs)
	if err != nil {
		return err
	}
	out.Reused += len(blobs) - len(missing)
	for _, b := range missing {
		n, err := c.blob(ctx, b)
		if err != nil {
			return err
		}
		out.Blobs++
		out.Bytes += n
	}
	return c.put(ctx, body, mediaType, digest, tag)
}

// manifest reads an image's manifest from repo; found is false when it has no such image.
func (c *copier) manifest(ctx context.Context, repo Repository, digest string) ([]byte, string, bool, error) {
	res, err := c.ecr.BatchGetImage(ctx, &ecr.BatchGetImageInput{RegistryId: repo.registry(), RepositoryName: aws.String(repo.Name),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}, AcceptedMediaTypes: manifestTypes})
	if err != nil {
		return nil, "", false, fmt.Errorf("reading image %s@%s (tier %s): %w", repo, digest, c.tier, err)
	}
	for _, im := range res.Images {
		if aws.ToString(im.ImageId.ImageDigest) == digest {
			return []byte(aws.ToString(im.ImageManifest)), aws.ToString(im.ImageManifestMediaType), true, nil
		}
	}
	for _, f := range res.Failures {
		if f.FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
			return nil, "", false, &RefusedError{What: fmt.Sprintf("reading image %s@%s: %s: %s", repo, digest, f.FailureCode, aws.ToString(f.FailureReason))}
		}
	}
	return nil, "", false, nil
}

// missing lists the blobs the target repository lacks, in order.
func (c *copier) missing(ctx context.Context, blobs []string) ([]string, error) {
	var out []string
	for chunk := range slices.Chunk(blobs, 100) {
		res, err := c.ecr.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RegistryId: c.dst.registry(),
			RepositoryName: aws.String(c.dst.Name), LayerDigests: chunk})
		if err != nil {
			return nil, fmt.Errorf("checking which layers %s has (tier %s): %w", c.dst, c.tier, err)
		}
		have := map[string]bool{}
		for _, l := range res.Layers {
			if l.LayerAvailability == ecrtypes.LayerAvailabilityAvailable {
				have[aws.ToString(l.LayerDigest)] = true
			}
		}
		for _, b := range chunk {
			if !have[b] { // unavailable, or a failure (MissingLayerDigest): either way, upload it
				out = append(out, b)
			}
		}
	}
	return out, nil
}

// blob streams one blob from the source's download URL into a layer upload to the target, in
// the parts ECR asks for, and returns its size. Only one part is in memory at a time.
func (c *copier) blob(ctx context.Context, digest string) (int64, error) {
	dl, err := c.ecr.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RegistryId: c.src.registry(),
		RepositoryName: aws.String(c.src.Name), LayerDigest: aws.String(digest)})
	if err != nil {
		return 0, fmt.Errorf("asking for layer %s of %s (tier %s): %w", digest, c.src, c.tier, err)
	}
	// A presigned URL: the request carries no credentials of Stagecoach's, only the URL's own.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, aws.ToString(dl.DownloadUrl), nil)
	if err != nil {
		return 0, &RefusedError{What: fmt.Sprintf("ECR answered a download URL for layer %s that is not one: %v", digest, err)}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading layer %s of %s: %w", digest, c.src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// An expired URL (403) or an S3 fault: the next try asks for a fresh URL.
		return 0, fmt.Errorf("downloading layer %s of %s: HTTP %d", digest, c.src, resp.StatusCode)
	}
	up, err := c.ecr.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RegistryId: c.dst.registry(), RepositoryName: aws.String(c.dst.Name)})
	if err != nil {
		return 0, fmt.Errorf("starting the upload of layer %s to %s (tier %s): %w", digest, c.dst, c.tier, err)
	}
	size := min(max(aws.ToInt64(up.PartSize), minPart), maxPart)
	buf := make([]byte, size)
	hash := sha256.New()
	var sent int64
	for {
		n, rerr := io.ReadFull(resp.Body, buf)
		if n > 0 {
			hash.Write(buf[:n])
			if _, err := c.ecr.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RegistryId: c.dst.registry(), RepositoryName: aws.String(c.dst.Name),
				UploadId: up.UploadId, PartFirstByte: aws.Int64(sent), PartLastByte: aws.Int64(sent + int64(n) - 1), LayerPartBlob: buf[:n]}); err != nil {
				return 0, fmt.Errorf("uploading layer %s to %s (tier %s): %w", digest, c.dst, c.tier, err)
			}
			sent += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return 0, fmt.Errorf("downloading layer %s of %s: %w", digest, c.src, rerr)
		}
	}
	if got := "sha256:" + hex.EncodeToString(hash.Sum(nil)); got != digest {
		// Never complete it: ECR would refuse it too, but a cut download must not look like a refusal.
		return 0, fmt.Errorf("downloading layer %s of %s: got %d bytes with digest %s", digest, c.src, sent, got)
	}
	_, err = c.ecr.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RegistryId: c.dst.registry(), RepositoryName: aws.String(c.dst.Name),
		UploadId: up.UploadId, LayerDigests: []string{digest}})
	var exists *ecrtypes.LayerAlreadyExistsException
	if err != nil && !errors.As(err, &exists) { // there already: a copy before this one finished it
		return 0, fmt.Errorf("completing the upload of layer %s to %s (tier %s): %w", digest, c.dst, c.tier, err)
	}
	return sent, nil
}

// put stores the manifest in the target and checks the digest ECR computed.
func (c *copier) put(ctx context.Context, body []byte, mediaType, digest, tag string) error {
	in := &ecr.PutImageInput{RegistryId: c.dst.registry(), RepositoryName: aws.String(c.dst.Name), ImageManifest: aws.String(string(body)),
		ImageDigest: aws.String(digest)}
	if mediaType != "" {
		in.ImageManifestMediaType = aws.String(mediaType)
	}
	if tag != "" {
		in.ImageTag = aws.String(tag)
	}
	res, err := c.ecr.PutImage(ctx, in)
	var exists *ecrtypes.ImageAlreadyExistsException
	switch {
	case errors.As(err, &exists):
		return nil // the same manifest and tag: a put before this one's answer was lost
	case err != nil:
		return fmt.Errorf("putting image %s@%s (tier %s): %w", c.dst, digest, c.tier, err)
	case aws.ToString(res.Image.ImageId.ImageDigest) != digest:
		return &RefusedError{What: fmt.Sprintf("ECR stored the manifest in %s as %s, not %s", c.dst, aws.ToString(res.Image.ImageId.ImageDigest), digest)}
	}
	return nil
}

// RefusedError is a copy that must not go on: what it would store is not what was tested.
type RefusedError struct{ What string }

func (e *RefusedError) Error() string { return e.What }

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// newDownloads is the HTTP client for layer downloads: presigned URLs need no credentials, and
// it sends none; it follows S3's redirects but not to another scheme.
func newDownloads() *http.Client {
	return &http.Client{Timeout: 30 * time.Minute, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 || req.URL.Scheme != via[0].URL.Scheme {
			return errors.New("too many or cross-scheme redirects")
		}
		return nil
	}}
}
