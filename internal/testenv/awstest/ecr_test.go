package awstest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

const (
	otherAccount = "210987654321"
	otherRole    = "arn:aws:iam::" + otherAccount + ":role/stagecoach-prod"
	hereRepo     = Account + ".dkr.ecr.eu-west-1.amazonaws.com/hello"
	thereRepo    = otherAccount + ".dkr.ecr.eu-west-1.amazonaws.com/hello"
)

func code(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// otherClient is an ECR client signing as the other account's role.
func otherClient(e *Env) *ecr.Client {
	e.STS.Allow(otherRole, "")
	cfg := e.Config()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(e.Config()), otherRole))
	return ecr.NewFromConfig(cfg)
}

// TestECRImageAPIs plays what ECR requires of a copy between registries, with the real SDK:
// another account reads a repository only once its policy allows, a manifest is refused while
// its layers are missing, layers go up in consecutive parts and are checked against their
// digest, the manifest's digest is checked, and putting the same image twice is
// ImageAlreadyExists.
func TestECRImageAPIs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d := e.ECR.Push(hereRepo, "v1")
	e.ECR.AddRepository(thereRepo)
	there := otherClient(e)
	src := func() *ecr.BatchGetImageInput {
		return &ecr.BatchGetImageInput{RegistryId: aws.String(Account), RepositoryName: aws.String("hello"),
			ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(d)}}}
	}
	if _, err := there.BatchGetImage(ctx, src()); code(err) != "AccessDeniedException" {
		t.Fatalf("reading another account's repository without its policy: %v, want AccessDeniedException", err)
	}
	e.ECR.AllowPull(hereRepo, otherAccount)
	got, err := there.BatchGetImage(ctx, src())
	if err != nil || len(got.Images) != 1 {
		t.Fatalf("BatchGetImage = %+v, %v", got, err)
	}
	manifest := aws.ToString(got.Images[0].ImageManifest)
	if digest(manifest) != d {
		t.Errorf("the manifest's digest is %s, want %s", digest(manifest), d)
	}
	missing, err := there.BatchGetImage(ctx, &ecr.BatchGetImageInput{RegistryId: aws.String(Account), RepositoryName: aws.String("hello"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("nope")}}})
	if err != nil || len(missing.Failures) != 1 || missing.Failures[0].FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
		t.Errorf("a missing image: %+v, %v, want a failure in the answer", missing, err)
	}
	if _, err := there.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RegistryId: aws.String(Account), RepositoryName: aws.String("hello")}); code(err) != "AccessDeniedException" {
		t.Errorf("pushing to a repository its policy lets pull only: %v", err)
	}

	put := &ecr.PutImageInput{RegistryId: aws.String(otherAccount), RepositoryName: aws.String("hello"), ImageManifest: aws.String(manifest), ImageTag: aws.String("v1")}
	if _, err := there.PutImage(ctx, put); code(err) != "LayersNotFoundException" {
		t.Fatalf("PutImage before the layers: %v, want LayersNotFoundException", err)
	}
	blobs, _, _ := references([]byte(manifest))
	check, err := there.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RegistryId: aws.String(otherAccount),
		RepositoryName: aws.String("hello"), LayerDigests: blobs})
	if err != nil || len(check.Failures) != len(blobs) || check.Failures[0].FailureCode != ecrtypes.LayerFailureCodeMissingLayerDigest {
		t.Fatalf("BatchCheckLayerAvailability = %+v, %v, want every blob missing", check, err)
	}
	for _, b := range blobs {
		url, err := there.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RegistryId: aws.String(Account),
			RepositoryName: aws.String("hello"), LayerDigest: aws.String(b)})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(aws.ToString(url.DownloadUrl))
		if err != nil {
			t.Fatal(err)
		}
		content, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		up, err := there.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RegistryId: aws.String(otherAccount), RepositoryName: aws.String("hello")})
		if err != nil || aws.ToInt64(up.PartSize) < 5<<20 {
			t.Fatalf("InitiateLayerUpload = %+v, %v", up, err)
		}
		part := func(first int64, blob []byte) error {
			_, err := there.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RegistryId: aws.String(otherAccount), RepositoryName: aws.String("hello"),
				UploadId: up.UploadId, PartFirstByte: aws.Int64(first), PartLastByte: aws.Int64(first + int64(len(blob)) - 1), LayerPartBlob: blob})
			return err
		}
		if err := part(1, content); code(err) != "InvalidLayerPartException" {
			t.Errorf("a part that does not start where the last ended: %v", err)
		}
		if err := part(0, content); err != nil {
			t.Fatal(err)
		}
		complete := func(d string) error {
			_, err := there.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RegistryId: aws.String(otherAccount), RepositoryName: aws.String("hello"),
				UploadId: up.UploadId, LayerDigests: []string{d}})
			return err
		}
		if err := complete("sha256:" + strings.Repeat("0", 64)); code(err) != "InvalidLayerException" {
			t.Errorf("completing with another digest: %v", err)
		}
		if err := complete(b); err != nil {
			t.Fatal(err)
		}
	}
	put.ImageDigest = aws.String("sha256:" + strings.Repeat("1", 64))
	if _, err := there.PutImage(ctx, put); code(err) != "ImageDigestDoesNotMatchException" {
		t.Errorf("PutImage with another digest: %v", err)
	}
	put.ImageDigest = aws.String(d)
	out, err := there.PutImage(ctx, put)
	if err != nil || aws.ToString(out.Image.ImageId.ImageDigest) != d {
		t.Fatalf("PutImage = %+v, %v", out, err)
	}
	if _, err := there.PutImage(ctx, put); code(err) != "ImageAlreadyExistsException" {
		t.Errorf("the same PutImage again: %v", err)
	}
	if !e.ECR.Has(thereRepo, d) || e.ECR.Digest(thereRepo, "v1") != d {
		t.Error("the other registry does not hold the image")
	}
}

// TestLayerDownloadURLs: a URL works for its layer only, and ECR's answer is needed for one.
func TestLayerDownloadURLs(t *testing.T) {
	e := newEnv(t)
	e.ECR.Push(hereRepo, "v1")
	resp, err := http.Get(e.URL() + "/starport-layer-bucket/" + Account + "/hello/sha256:00?X-Amz-Signature=guess")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a guessed URL: HTTP %d, want 403", resp.StatusCode)
	}
}

// TestFailNextAndLoseAnswers: the faults a test sets up happen to the operation named, in order.
func TestFailNextAndLoseAnswers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	client := ecr.NewFromConfig(e.Config(), func(o *ecr.Options) { o.RetryMaxAttempts = 1 })
	e.ECR.AddRepository("hello")
	e.FailNext("InitiateLayerUpload", 1)
	e.LoseAnswers("InitiateLayerUpload", 1)
	for i, want := range []string{"ServerException", "ServerException", ""} {
		_, err := client.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RepositoryName: aws.String("hello")})
		if code(err) != want {
			t.Errorf("call %d: %v, want %q", i+1, err, want)
		}
	}
	e.ECR.mu.Lock()
	defer e.ECR.mu.Unlock()
	if n := len(e.ECR.uploads); n != 2 {
		t.Errorf("%d uploads started, want 2 (the lost answer's and the last)", n)
	}
}
