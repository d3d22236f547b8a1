package awstest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestStartWithoutATest runs the fake as `stagecoach sandbox` does: no testing.TB, problems read
// from Problems, stopped by Close.
func TestStartWithoutATest(t *testing.T) {
	e, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	e.Secrets.Add("hello/test")
	sm := secretsmanager.NewFromConfig(e.Config())
	ctx := context.Background()
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")}); err != nil {
		t.Fatal(err)
	}
	if p := e.Problems(); len(p) != 0 {
		t.Errorf("problems after a good call: %q", p)
	}
	resp, err := http.Get(e.URL() + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if p := e.Problems(); len(p) != 1 || !strings.Contains(p[0], "POST to /") {
		t.Errorf("problems = %q, want the GET", p)
	}
	e.Close()
	e.Close() // twice is fine
	if _, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("hello/test")}); err == nil {
		t.Error("the fake still answers after Close")
	}
}
