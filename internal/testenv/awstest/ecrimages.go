package awstest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The manifest media types the fake knows: a single image (Docker's schema 2 or OCI's) and a
// list of images for several platforms (Docker's manifest list or OCI's index).
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

// minPart is the smallest layer part ECR takes, but for the last (LayerPartTooSmallException);
// partSize is what InitiateLayerUpload asks parts to be.
const (
	minPart  = 5 << 20
	partSize = minPart
)

// linkTTL is how long a layer's download URL works, as a presigned S3 URL's X-Amz-Expires.
const linkTTL = time.Hour

// descriptor is a manifest's reference to a blob or, in a list, to another manifest.
type descriptor struct {
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Digest    string `json:"digest"`
}

// manifestDoc is the part of a manifest the fake reads: what it references.
type manifestDoc struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        *descriptor  `json:"config,omitempty"`
	Layers        []descriptor `json:"layers,omitempty"`
	Manifests     []descriptor `json:"manifests,omitempty"`
}

// baseLayer is the layer every image the fake builds shares, as images built FROM one base do:
// a copy finds it in a repository that holds any of them already.
var baseLayer = []byte(strings.Repeat("stagecoach base image layer\n", 128))

// fakeImage builds a small image from seed: a config blob, the shared base layer and one layer of
// its own (or one of each size given), and its Docker schema 2 manifest.
func fakeImage(seed string, sizes []int) ([]byte, map[string][]byte) {
	if len(sizes) == 0 {
		sizes = []int{2048}
	}
	blobs := map[string][]byte{}
	add := func(b []byte, mediaType string) descriptor {
		d := digest(string(b))
		blobs[d] = b
		return descriptor{MediaType: mediaType, Size: int64(len(b)), Digest: d}
	}
	doc := manifestDoc{SchemaVersion: 2, MediaType: mediaDockerManifest}
	doc.Layers = append(doc.Layers, add(baseLayer, "application/vnd.docker.image.rootfs.diff.tar.gzip"))
	for i, n := range sizes {
		doc.Layers = append(doc.Layers, add(filler(fmt.Sprintf("%s layer %d", seed, i), n), "application/vnd.docker.image.rootfs.diff.tar.gzip"))
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux", "config": map[string]any{"Labels": map[string]string{"seed": seed}}})
	doc.Config = ptr(add(cfg, "application/vnd.docker.container.image.v1+json"))
	m, _ := json.MarshalIndent(doc, "", "   ")
	return m, blobs
}

func ptr[T any](v T) *T { return &v }

// filler is n bytes that depend on seed.
func filler(seed string, n int) []byte {
	out := make([]byte, n)
	_, _ = rand.NewChaCha8(sha256.Sum256([]byte(seed))).Read(out)
	return out
}

// references are the digests a manifest needs in its repository: blobs (config and layers) for an
// image, manifests for a list.
func references(body []byte) (blobs, manifests []string, err error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, err
	}
	if doc.Config != nil {
		blobs = append(blobs, doc.Config.Digest)
	}
	for _, l := range doc.Layers {
		blobs = append(blobs, l.Digest)
	}
	for _, m := range doc.Manifests {
		manifests = append(manifests, m.Digest)
	}
	return blobs, manifests, nil
}

// missing lists the blobs a manifest references that the repository lacks.
func (r *repository) missing(body []byte) []string {
	blobs, _, _ := references(body)
	var out []string
	for _, b := range blobs {
		if _, ok := r.blobs[b]; !ok {
			out = append(out, b)
		}
	}
	return out
}

// size is an image's size: its layers and config, as DescribeImages counts it.
func (r *repository) size(body []byte) int {
	blobs, _, _ := references(body)
	n := 0
	for _, b := range blobs {
		n += len(r.blobs[b])
	}
	return n
}

func imageID(digest, tag string) map[string]any {
	id := map[string]any{"imageDigest": digest}
	if tag != "" {
		id["imageTag"] = tag
	}
	return id
}

// batchGetImage answers the manifests asked for; what is missing is a failure in the answer,
// not an error, as ECR does.
func batchGetImage(k repoKey, r *repository, in ecrRequest) (any, *apiError) {
	images, failures := []any{}, []any{}
	for _, id := range in.ImageIDs {
		d := id.ImageDigest
		if id.ImageTag != "" {
			if td, ok := r.tags[id.ImageTag]; ok && (d == "" || d == td) {
				d = td
			} else {
				d = ""
			}
		}
		m := r.manifests[d]
		if m == nil {
			failures = append(failures, map[string]any{"imageId": imageID(id.ImageDigest, id.ImageTag),
				"failureCode": "ImageNotFound", "failureReason": "Requested image not found"})
			continue
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, m.mediaType) {
			failures = append(failures, map[string]any{"imageId": imageID(d, id.ImageTag),
				"failureCode": "InvalidImageDigest", "failureReason": "Manifest media type " + m.mediaType + " is not accepted"})
			continue
		}
		images = append(images, map[string]any{"registryId": k.account, "repositoryName": k.name, "imageId": imageID(d, id.ImageTag),
			"imageManifest": string(m.body), "imageManifestMediaType": m.mediaType})
	}
	return map[string]any{"images": images, "failures": failures}, nil
}

// putImage stores a manifest under its digest (and tag), once every blob or manifest it
// references is in the repository.
func putImage(k repoKey, r *repository, in ecrRequest, now time.Time) (any, *apiError) {
	body := []byte(in.ImageManifest)
	d := digest(in.ImageManifest)
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil || doc.SchemaVersion != 2 {
		return nil, &apiError{code: "InvalidParameterException", msg: "Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"}
	}
	mediaType := in.ManifestMediaType
	if mediaType == "" {
		mediaType = doc.MediaType
	}
	if !slices.Contains([]string{mediaDockerManifest, mediaOCIManifest, mediaDockerList, mediaOCIIndex}, mediaType) {
		return nil, &apiError{code: "InvalidParameterException", msg: fmt.Sprintf("Invalid parameter at 'imageManifestMediaType': %q is not a supported manifest media type", mediaType)}
	}
	if in.ImageDigest != "" && in.ImageDigest != d {
		return nil, &apiError{code: "ImageDigestDoesNotMatchException", msg: fmt.Sprintf(
			"Provided digest %s does not match the calculated digest %s of the manifest", in.ImageDigest, d)}
	}
	if missing := r.missing(body); len(missing) > 0 {
		return nil, &apiError{code: "LayersNotFoundException", msg: fmt.Sprintf(
			"Layers with digests '%s' required for pushing image into repository with name '%s' in registry with id '%s' do not exist",
			strings.Join(missing, ", "), k.name, k.account)}
	}
	_, children, _ := references(body)
	for _, c := range children {
		if r.manifests[c] == nil {
			return nil, &apiError{code: "ReferencedImagesNotFoundException", msg: fmt.Sprintf(
				"Manifest list references image %s, which does not exist in the repository with name '%s'", c, k.name)}
		}
	}
	old, tagged := r.tags[in.ImageTag]
	switch {
	case r.manifests[d] != nil && (in.ImageTag == "" || (tagged && old == d)):
		return nil, &apiError{code: "ImageAlreadyExistsException", msg: fmt.Sprintf(
			"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", d, orNull(in.ImageTag), k.name, k.account)}
	case in.ImageTag != "" && tagged && r.immutable:
		return nil, &apiError{code: "ImageTagAlreadyExistsException", msg: fmt.Sprintf(
			"The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", in.ImageTag, k.name)}
	}
	if r.manifests[d] == nil {
		r.manifests[d] = &manifestRec{body: body, mediaType: mediaType, pushed: now}
	}
	if in.ImageTag != "" {
		r.tags[in.ImageTag] = d
	}
	return map[string]any{"image": map[string]any{"registryId": k.account, "repositoryName": k.name, "imageId": imageID(d, in.ImageTag),
		"imageManifest": in.ImageManifest, "imageManifestMediaType": mediaType}}, nil
}

// checkLayers says which blobs the repository has; a missing one is a failure, as ECR says it.
func checkLayers(r *repository, in ecrRequest) (any, *apiError) {
	layers, failures := []any{}, []any{}
	for _, d := range in.LayerDigests {
		b, ok := r.blobs[d]
		if !ok {
			failures = append(failures, map[string]any{"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Could not find layer"})
			continue
		}
		layers = append(layers, map[string]any{"layerDigest": d, "layerAvailability": "AVAILABLE", "layerSize": len(b)})
	}
	return map[string]any{"layers": layers, "failures": failures}, nil
}

// layerLink is what a download URL names.
type layerLink struct {
	repo    repoKey
	digest  string
	expires time.Time
}

// downloadURL answers a presigned URL (on the fake's own server, standing in for S3) for a blob.
func (e *ECR) downloadURL(k repoKey, r *repository, in ecrRequest) (any, *apiError) {
	if _, ok := r.blobs[in.LayerDigest]; !ok {
		return nil, &apiError{code: "LayersNotFoundException", msg: fmt.Sprintf("The specified layer %s does not exist in the repository with name '%s'", in.LayerDigest, k.name)}
	}
	token := randomHex(32)
	if e.links == nil {
		e.links = map[string]layerLink{}
	}
	e.links[token] = layerLink{repo: k, digest: in.LayerDigest, expires: time.Now().Add(linkTTL)}
	u := fmt.Sprintf("%s/starport-layer-bucket/%s/%s/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=%d&X-Amz-Signature=%s",
		e.env.srv.URL, k.account, k.name, in.LayerDigest, int(linkTTL.Seconds()), token)
	return map[string]any{"downloadUrl": u, "layerDigest": in.LayerDigest}, nil
}

// download serves a blob at a URL downloadURL gave, as S3 serves a presigned URL: it needs no
// credentials, and a request that brings some is a client sending its own where it need not.
func (e *ECR) download(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" || r.Header.Get("X-Amz-Security-Token") != "" {
		e.env.problem("a layer download carried credentials (%s): a presigned URL needs none", r.URL.Path)
	}
	e.mu.Lock()
	link, ok := e.links[r.URL.Query().Get("X-Amz-Signature")]
	var blob []byte
	if ok && time.Now().Before(link.expires) && strings.HasSuffix(r.URL.Path, "/"+link.digest) {
		if repo := e.repos[link.repo]; repo != nil {
			blob = repo.blobs[link.digest]
		}
	}
	e.mu.Unlock()
	if blob == nil {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Request has expired or is not signed</Message></Error>`)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
	_, _ = w.Write(blob)
}

// upload is a layer upload in progress.
type upload struct {
	repo  repoKey
	data  []byte
	parts []int // each part's size, in order
}

// layerUpload answers the three calls of a layer upload: InitiateLayerUpload, then
// UploadLayerPart for consecutive parts of at least minPart bytes (but the last), then
// CompleteLayerUpload, which checks the content against its digest.
func (e *ECR) layerUpload(op string, k repoKey, r *repository, in ecrRequest) (any, *apiError) {
	if e.uploads == nil {
		e.uploads = map[string]*upload{}
	}
	if op == "InitiateLayerUpload" {
		id := requestID()
		e.uploads[id] = &upload{repo: k}
		return map[string]any{"uploadId": id, "partSize": partSize}, nil
	}
	up := e.uploads[in.UploadID]
	if up == nil || up.repo != k {
		return nil, &apiError{code: "UploadNotFoundException", msg: fmt.Sprintf("Upload with id '%s' is not found", in.UploadID)}
	}
	if op == "UploadLayerPart" {
		first, last := int64(-1), int64(-1)
		if in.PartFirstByte != nil && in.PartLastByte != nil {
			first, last = *in.PartFirstByte, *in.PartLastByte
		}
		if first != int64(len(up.data)) || last != first+int64(len(in.LayerPartBlob))-1 {
			return nil, &apiError{code: "InvalidLayerPartException", msg: fmt.Sprintf(
				"The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload: got %d-%d after %d bytes",
				first, last, len(up.data))}
		}
		up.data = append(up.data, in.LayerPartBlob...)
		up.parts = append(up.parts, len(in.LayerPartBlob))
		return map[string]any{"registryId": k.account, "repositoryName": k.name, "uploadId": in.UploadID, "lastByteReceived": len(up.data) - 1}, nil
	}
	// CompleteLayerUpload.
	if len(up.data) == 0 {
		return nil, &apiError{code: "EmptyUploadException", msg: "The specified layer upload does not contain any layer parts"}
	}
	for _, n := range up.parts[:len(up.parts)-1] {
		if n < minPart {
			return nil, &apiError{code: "LayerPartTooSmallException", msg: "Layer parts must be at least 5 MiB in size"}
		}
	}
	sum := sha256.Sum256(up.data)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if len(in.LayerDigests) != 1 || in.LayerDigests[0] != got {
		return nil, &apiError{code: "InvalidLayerException", msg: fmt.Sprintf("The layer digest %v does not match the calculated digest %s", in.LayerDigests, got)}
	}
	delete(e.uploads, in.UploadID)
	if _, ok := r.blobs[got]; ok {
		return nil, &apiError{code: "LayerAlreadyExistsException", msg: fmt.Sprintf("The layer %s already exists in the repository with name '%s'", got, k.name)}
	}
	r.blobs[got] = up.data
	return map[string]any{"registryId": k.account, "repositoryName": k.name, "uploadId": in.UploadID, "layerDigest": got}, nil
}

// PushIndex puts a list of images (an OCI image index) under tag, naming images the repository
// holds by digest, as `docker buildx` pushes a multi-platform image, and returns its digest.
func (e *ECR) PushIndex(repository, tag string, images ...string) string {
	k := refOf(repository)
	now := e.env.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.repo(k, true)
	doc := manifestDoc{SchemaVersion: 2, MediaType: mediaOCIIndex}
	for _, d := range images {
		m := r.manifests[d]
		if m == nil {
			e.env.problem("PushIndex: %s holds no image %s", k, d)
			return ""
		}
		doc.Manifests = append(doc.Manifests, descriptor{MediaType: m.mediaType, Size: int64(len(m.body)), Digest: d})
	}
	body, _ := json.MarshalIndent(doc, "", "   ")
	d := digest(string(body))
	r.manifests[d] = &manifestRec{body: body, mediaType: mediaOCIIndex, pushed: now}
	r.tags[tag] = d
	return d
}
