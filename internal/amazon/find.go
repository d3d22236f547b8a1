package amazon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	cbtypes "github.com/aws/aws-sdk-go-v2/service/codebuild/types"
)

// BuildQuery describes a build FindBuild looks for.
type BuildQuery struct {
	Project       string
	SourceVersion string
	Env           map[string]string // every one of these plain variables, with these values
	Since         time.Time         // the build started at or after this
}

// findBatch is how many builds FindBuild reads at once.
const findBatch = 20

// maxFindPages bounds FindBuild: 10 pages of 100 builds, far more than a project starts in the
// hours a deploy may look back over.
const maxFindPages = 10

// FindBuild looks through the project's builds, newest first, for one that matches q, and
// returns its id. It stops at the first build that started before q.Since. A deploy asks it
// before starting a build whose start may have reached CodeBuild already (the answer, or the
// record of it, lost): CodeBuild honours an idempotency token for five minutes only.
func (a *AWS) FindBuild(ctx context.Context, s Session, q BuildQuery) (string, bool, error) {
	cfg, err := a.configFor(s)
	if err != nil {
		return "", false, err
	}
	cb := codebuild.NewFromConfig(cfg)
	var next *string
	for range maxFindPages {
		page, err := cb.ListBuildsForProject(ctx, &codebuild.ListBuildsForProjectInput{
			ProjectName: aws.String(q.Project), SortOrder: cbtypes.SortOrderTypeDescending, NextToken: next})
		if err != nil {
			return "", false, fmt.Errorf("listing the builds of %s (tier %s): %w", q.Project, s.Tier, err)
		}
		if len(page.Ids) == 0 {
			return "", false, nil
		}
		older := false
		// Newest first, a few at a time: the builds wanted, if any, are among the first.
		for ids := range slices.Chunk(page.Ids, findBatch) {
			out, err := cb.BatchGetBuilds(ctx, &codebuild.BatchGetBuildsInput{Ids: ids})
			if err != nil {
				return "", false, fmt.Errorf("reading the builds of %s (tier %s): %w", q.Project, s.Tier, err)
			}
			for _, b := range out.Builds {
				if aws.ToTime(b.StartTime).Before(q.Since) {
					older = true
					continue
				}
				if matches(b, q) {
					return aws.ToString(b.Id), true, nil
				}
			}
			if older {
				break
			}
		}
		if older || page.NextToken == nil {
			return "", false, nil
		}
		next = page.NextToken
	}
	return "", false, nil
}

func matches(b cbtypes.Build, q BuildQuery) bool {
	if aws.ToString(b.SourceVersion) != q.SourceVersion || b.Environment == nil {
		return false
	}
	found := 0
	for _, v := range b.Environment.EnvironmentVariables {
		if want, ok := q.Env[aws.ToString(v.Name)]; ok && v.Type == cbtypes.EnvironmentVariableTypePlaintext && aws.ToString(v.Value) == want {
			found++
		}
	}
	return found == len(q.Env)
}
