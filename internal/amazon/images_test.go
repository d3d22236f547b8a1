package amazon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/stagecoach/stagecoach/config"
	"github.com/stagecoach/stagecoach/internal/testenv/awstest"
)

// Two accounts' registries: nonprod's images in 123456789012, prod's role and registry in
// 210987654321.
const (
	crossProdRole = "arn:aws:iam::210987654321:role/stagecoach-prod"
	nonprodRepo   = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hello"
	prodRepo      = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/hello"
)

// copyWorld is the AWS test server with both registries, the prod role assumable, and prod's
// repository empty; the SDK's retryer waits milliseconds rather than seconds.
func copyWorld(t *testing.T) (*AWS, *awstest.Env, Session) {
	t.Helper()
	env := awstest.New(t)
	env.STS.Allow(crossProdRole, "")
	env.ECR.AddRepository(prodRepo)
	cfg := env.Config()
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10 * time.Millisecond })
	}
	a := New(cfg, config.Credentials{Prod: config.Tier{RoleARN: crossProdRole}})
	return a, env, Session{Tier: "prod", Name: "stagecoach-hello-prod-c4295bd"}
}

func okCalls(env *awstest.Env, op string) int {
	n := 0
	for _, c := range env.Calls(op) {
		if c.Status == http.StatusOK {
			n++
		}
	}
	return n
}

// TestCopyImageAcrossAccounts copies an image with a layer larger than one upload part from
// nonprod's registry into prod's, with prod's role only (nonprod's repository policy lets prod's
// account pull): every blob goes up in ECR's parts, the manifest last, and prod's repository
// then holds exactly the tested digest under the tag. A second copy finds it and writes nothing.
func TestCopyImageAcrossAccounts(t *testing.T) {
	a, env, s := copyWorld(t)
	digest := env.ECR.PushLayers(nonprodRepo, "c4295bd74fb0-test-1", 6<<20) // two parts: 5 MiB and 1 MiB
	env.ECR.AllowPull(nonprodRepo, "210987654321")
	ctx := context.Background()
	got, err := a.CopyImage(ctx, s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: digest, Tag: "c4295bd74fb0-prod-2"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Already || got.Blobs != 3 || got.Reused != 0 || got.Bytes < 6<<20 {
		t.Errorf("copy = %+v, want the config, the base layer and the 6 MiB layer uploaded", got)
	}
	if !env.ECR.Has(prodRepo, digest) {
		t.Fatalf("prod's repository does not hold %s with its layers", digest)
	}
	if tags := env.ECR.Tags(prodRepo, digest); len(tags) != 1 || tags[0] != "c4295bd74fb0-prod-2" {
		t.Errorf("tags in prod = %v", tags)
	}
	if n := len(env.Calls("UploadLayerPart")); n != 4 {
		t.Errorf("%d parts uploaded, want 4 (two for the large layer, one each for the rest)", n)
	}
	reads := map[string]bool{"GetDownloadUrlForLayer": true}
	writes := map[string]bool{"BatchCheckLayerAvailability": true, "InitiateLayerUpload": true, "UploadLayerPart": true, "CompleteLayerUpload": true, "PutImage": true}
	for _, c := range env.Calls("") {
		if c.Service != "ecr" {
			continue
		}
		if c.Role != crossProdRole {
			t.Errorf("%s signed by %q, want prod's role only", c.Operation, c.Role)
		}
		switch body := string(c.Body); {
		case reads[c.Operation] && !strings.Contains(body, `"registryId":"123456789012"`):
			t.Errorf("%s read from %s, want nonprod's registry", c.Operation, body)
		case writes[c.Operation] && !strings.Contains(body, `"registryId":"210987654321"`):
			t.Errorf("%s wrote to %.200s, want prod's registry", c.Operation, body)
		}
	}
	puts := okCalls(env, "PutImage")
	again, err := a.CopyImage(ctx, s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: digest, Tag: "c4295bd74fb0-prod-3"})
	if err != nil || !again.Already || okCalls(env, "PutImage") != puts {
		t.Errorf("second copy = %+v, %v; PutImage %d times, want nothing copied", again, err, okCalls(env, "PutImage"))
	}

	// Another image built on the same base: the base layer is in prod already.
	other := env.ECR.Push(nonprodRepo, "0ddba11-test-4")
	got, err = a.CopyImage(ctx, s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: other, Tag: "0ddba11-prod-5"})
	if err != nil || got.Reused != 1 || got.Blobs != 2 {
		t.Errorf("copy of a second image = %+v, %v, want the base layer reused", got, err)
	}
}

// TestCopyImageWithoutRepositoryPolicyIsRefused: prod's role cannot read nonprod's repository
// until its policy lets prod's account pull; the copy fails for good and writes nothing.
func TestCopyImageWithoutRepositoryPolicyIsRefused(t *testing.T) {
	a, env, s := copyWorld(t)
	digest := env.ECR.Push(nonprodRepo, "c4295bd74fb0-test-1")
	_, err := a.CopyImage(context.Background(), s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: digest, Tag: "t"})
	if err == nil || !Permanent(err) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("copy = %v, want a permanent AccessDeniedException", err)
	}
	if env.ECR.Has(prodRepo, digest) || len(env.Calls("InitiateLayerUpload")) != 0 {
		t.Error("something was written to prod's repository")
	}
}

// TestCopyImageOfAnUnknownDigestIsNotFound: nothing is invented for a digest the source lacks.
func TestCopyImageOfAnUnknownDigestIsNotFound(t *testing.T) {
	a, env, s := copyWorld(t)
	env.ECR.Push(nonprodRepo, "c4295bd74fb0-test-1")
	env.ECR.AllowPull(nonprodRepo, "210987654321")
	missing := "sha256:" + strings.Repeat("0", 64)
	_, err := a.CopyImage(context.Background(), s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: missing, Tag: "t"})
	var nf *NotFoundError
	if !errors.As(err, &nf) || !Permanent(err) {
		t.Fatalf("copy = %v, want a NotFoundError", err)
	}
}

// TestCopyImageWhosePutImageAnswerIsLost: PutImage stores the manifest but its answer is lost;
// the SDK tries again, ECR says the image exists, and the copy counts that as done: one image.
func TestCopyImageWhosePutImageAnswerIsLost(t *testing.T) {
	a, env, s := copyWorld(t)
	digest := env.ECR.Push(nonprodRepo, "c4295bd74fb0-test-1")
	env.ECR.AllowPull(nonprodRepo, "210987654321")
	env.LoseAnswers("PutImage", 1)
	if _, err := a.CopyImage(context.Background(), s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: digest, Tag: "c4295bd74fb0-prod-2"}); err != nil {
		t.Fatal(err)
	}
	calls := env.Calls("PutImage")
	if len(calls) != 2 || calls[0].Status != http.StatusInternalServerError || calls[1].Status != http.StatusBadRequest {
		t.Errorf("PutImage calls = %d (%v), want the lost one, then ImageAlreadyExists", len(calls), calls)
	}
	if !env.ECR.Has(prodRepo, digest) {
		t.Error("the image is not in prod's repository")
	}
}

// TestCopyImageAfterPutImageFailsIsFinishedByTheNextCopy: PutImage failing past the SDK's
// retries is a transient error; the next copy reuses every uploaded blob and puts the manifest.
func TestCopyImageAfterPutImageFailsIsFinishedByTheNextCopy(t *testing.T) {
	a, env, s := copyWorld(t)
	digest := env.ECR.Push(nonprodRepo, "c4295bd74fb0-test-1")
	env.ECR.AllowPull(nonprodRepo, "210987654321")
	env.FailNext("PutImage", 3)
	in := CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: digest, Tag: "c4295bd74fb0-prod-2"}
	if _, err := a.CopyImage(context.Background(), s, in); err == nil || Permanent(err) {
		t.Fatalf("copy = %v, want a transient failure", err)
	}
	got, err := a.CopyImage(context.Background(), s, in)
	if err != nil || got.Blobs != 0 || got.Reused != 3 {
		t.Fatalf("second copy = %+v, %v, want every blob reused", got, err)
	}
	if n := okCalls(env, "PutImage"); n != 1 || !env.ECR.Has(prodRepo, digest) {
		t.Errorf("PutImage succeeded %d times, want once", n)
	}
}

// TestCopyImageList copies a multi-platform image: each image it lists goes first, then the
// list; ECR would refuse the list before them.
func TestCopyImageList(t *testing.T) {
	a, env, s := copyWorld(t)
	amd := env.ECR.Push(nonprodRepo, "amd64")
	arm := env.ECR.Push(nonprodRepo, "arm64")
	index := env.ECR.PushIndex(nonprodRepo, "c4295bd74fb0-test-1", amd, arm)
	env.ECR.AllowPull(nonprodRepo, "210987654321")
	if _, err := a.CopyImage(context.Background(), s, CopyInput{Source: nonprodRepo, Target: prodRepo, Digest: index, Tag: "c4295bd74fb0-prod-2"}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{amd, arm, index} {
		if !env.ECR.Has(prodRepo, d) {
			t.Errorf("prod lacks %s", d)
		}
	}
}
