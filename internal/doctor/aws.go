package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/codebuild"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stagecoach/stagecoach/config"
)

// sessionName names the doctor's role sessions, so CloudTrail tells them apart from deploys.
const sessionName = "stagecoach-doctor"

// aws checks the credentials tiers, and with them each app's secrets, project and repository.
func (d *doctor) aws(ctx context.Context) {
	const area = AreaAWS
	if len(d.cfg.Apps) == 0 {
		return
	}
	if d.o.AWS == nil {
		d.add(area, "AWS credentials", Fail, fmt.Sprintf("could not load the AWS configuration: %v", d.o.AWSError),
			"give Stagecoach AWS credentials as for the service (IRSA, AWS_PROFILE, AWS_* variables) and a region (AWS_REGION)")
		return
	}
	me, err := sts.NewFromConfig(*d.o.AWS).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		d.add(area, "AWS credentials", Fail, "AWS does not accept Stagecoach's own credentials: "+awsError(err),
			"give Stagecoach AWS credentials as for the service (IRSA, AWS_PROFILE, AWS_* variables)")
		return
	}
	identity := aws.ToString(me.Arn)
	d.add(area, "AWS credentials", OK, "Stagecoach is "+identity+" (account "+aws.ToString(me.Account)+")", "")

	tiers := map[string]aws.Config{}
	for _, name := range usedTiers(d.cfg) {
		if cfg, ok := d.tier(ctx, identity, name); ok {
			tiers[name] = cfg
		}
	}
	for _, app := range d.cfg.Apps {
		d.secrets(ctx, tiers, app)
		d.project(ctx, tiers, app, app.CodeBuildProject, appTiers(d.cfg, app))
		d.repository(ctx, tiers, app)
		d.prBuilds(ctx, tiers, app)
	}
}

// tier checks that a credentials tier's role can be assumed, and returns its configuration.
func (d *doctor) tier(ctx context.Context, identity, name string) (aws.Config, bool) {
	t, _ := d.cfg.Credentials.Tier(name)
	check := "tier " + name
	if t.RoleARN == "" {
		d.add(AreaAWS, check, Warn, "no role: the tier uses Stagecoach's own credentials ("+identity+"), which every tier then shares",
			"give the tier a role of its own (credentials."+name+".role_arn)")
		return *d.o.AWS, true
	}
	cfg := d.o.AWS.Copy()
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(*d.o.AWS), t.RoleARN,
		func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = sessionName
			if t.ExternalID != "" {
				o.ExternalID = aws.String(t.ExternalID)
			}
		}))
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		fix := "let " + identity + " assume " + t.RoleARN + " in the role's trust policy"
		if t.ExternalID != "" {
			fix += ", with the condition sts:ExternalId = credentials." + name + ".external_id"
		}
		d.add(AreaAWS, check, Fail, "cannot assume "+t.RoleARN+": "+awsError(err)+"; what needs the tier was not checked", fix)
		return aws.Config{}, false
	}
	d.add(AreaAWS, check, OK, "assumed "+t.RoleARN, "")
	return cfg, true
}

// secrets checks each stage's Secrets Manager secret exists, with DescribeSecret under the
// stage's tier: its value is never read.
func (d *doctor) secrets(ctx context.Context, tiers map[string]aws.Config, app config.App) {
	for _, st := range d.cfg.Stages {
		as, ok := app.Stages[st.Name]
		if !ok || as.SecretID == "" {
			continue
		}
		cfg, ok := tiers[st.Credentials]
		if !ok {
			continue
		}
		check := fmt.Sprintf("%s %s secret", app.Name, st.Name)
		out, err := secretsmanager.NewFromConfig(cfg).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(as.SecretID)})
		var nf *smtypes.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			d.add(AreaAWS, check, Fail, fmt.Sprintf("no secret %s in Secrets Manager (%s): the build cannot write .env", as.SecretID, cfg.Region),
				fmt.Sprintf("create it, or correct apps[%s].stages.%s.secret_id", app.Name, st.Name))
		case err != nil:
			d.add(AreaAWS, check, Fail, fmt.Sprintf("the %s tier cannot describe %s: %s", st.Credentials, as.SecretID, awsError(err)),
				"allow secretsmanager:DescribeSecret on it to the "+st.Credentials+" tier's role")
		default:
			d.add(AreaAWS, check, OK, fmt.Sprintf("%s exists, describable by the %s tier (its value was not read)", aws.ToString(out.ARN), st.Credentials), "")
		}
	}
}

// project checks a CodeBuild project exists, as each tier that starts its builds sees it.
func (d *doctor) project(ctx context.Context, tiers map[string]aws.Config, app config.App, project string, use []string) {
	check := fmt.Sprintf("%s CodeBuild project %s", app.Name, project)
	var seen []string
	for _, tier := range use {
		cfg, ok := tiers[tier]
		if !ok {
			continue
		}
		out, err := codebuild.NewFromConfig(cfg).BatchGetProjects(ctx, &codebuild.BatchGetProjectsInput{Names: []string{project}})
		switch {
		case err != nil:
			d.add(AreaAWS, check, Fail, fmt.Sprintf("the %s tier cannot read it: %s", tier, awsError(err)),
				"allow codebuild:BatchGetProjects and codebuild:StartBuild on it to the "+tier+" tier's role")
			return
		case len(out.Projects) == 0:
			d.add(AreaAWS, check, Fail, fmt.Sprintf("no project %s in CodeBuild (%s), as the %s tier sees it", project, cfg.Region, tier),
				"create it, or correct the configuration's codebuild_project")
			return
		}
		seen = append(seen, tier)
	}
	if len(seen) > 0 {
		d.add(AreaAWS, check, OK, "exists, seen by the "+tiersOf(seen), "")
	}
}

// tiersOf names tiers: "the nonprod tier", "the nonprod and prod tiers".
func tiersOf(names []string) string {
	if len(names) == 1 {
		return names[0] + " tier"
	}
	return strings.Join(names, " and ") + " tiers"
}

// repository checks the app's ECR repository exists, in the registry its URI names, as each tier
// that deploys the app sees it.
func (d *doctor) repository(ctx context.Context, tiers map[string]aws.Config, app config.App) {
	registry, name := splitRepository(app.ImageRepository)
	check := fmt.Sprintf("%s ECR repository %s", app.Name, name)
	var seen []string
	for _, tier := range appTiers(d.cfg, app) {
		cfg, ok := tiers[tier]
		if !ok {
			continue
		}
		in := &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}}
		if registry != "" {
			in.RegistryId = aws.String(registry)
		}
		_, err := ecr.NewFromConfig(cfg).DescribeRepositories(ctx, in)
		var nf *ecrtypes.RepositoryNotFoundException
		switch {
		case errors.As(err, &nf):
			d.add(AreaAWS, check, Fail, fmt.Sprintf("no repository %s in registry %s, as the %s tier sees it", name, orDefault(registry, "of the tier's account"), tier),
				"create it, or correct apps["+app.Name+"].image_repository")
			return
		case err != nil:
			d.add(AreaAWS, check, Fail, fmt.Sprintf("the %s tier cannot read it: %s", tier, awsError(err)),
				"allow ecr:DescribeRepositories and ecr:DescribeImages on it to the "+tier+" tier's role")
			return
		}
		seen = append(seen, tier)
	}
	if len(seen) > 0 {
		d.add(AreaAWS, check, OK, "exists, seen by the "+tiersOf(seen), "")
	}
}

// prBuilds checks pull-request builds run in a project of their own, which the pr tier sees: a
// pull request's buildspec is the pull request's author's code, and must not run where the
// deploys' builds run, with their service role.
func (d *doctor) prBuilds(ctx context.Context, tiers map[string]aws.Config, app config.App) {
	if !app.PRBuild.Enabled {
		return
	}
	check := app.Name + " pull-request builds"
	if app.PRBuild.CodeBuildProject == app.CodeBuildProject {
		d.add(AreaAWS, check, Fail, "they run in the deploy project "+app.CodeBuildProject+
			": a pull request's buildspec would run with the service role that builds and pushes the deployed images",
			"create a project for pull requests with a service role of its own, and set apps["+app.Name+"].pr_build.codebuild_project")
		return
	}
	d.add(AreaAWS, check, OK, "in a project of their own, "+app.PRBuild.CodeBuildProject, "")
	d.project(ctx, tiers, app, app.PRBuild.CodeBuildProject, []string{"pr"})
}

// usedTiers are the tiers some check needs: each deployed stage's, and pr for PR builds.
func usedTiers(cfg *config.Config) []string {
	var out []string
	for _, app := range cfg.Apps {
		for _, t := range appTiers(cfg, app) {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
		if app.PRBuild.Enabled && !slices.Contains(out, "pr") {
			out = append(out, "pr")
		}
	}
	order := []string{"pr", "nonprod", "prod"}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	return out
}

// appTiers are the tiers an app's stages deploy with.
func appTiers(cfg *config.Config, app config.App) []string {
	var out []string
	for _, st := range cfg.Stages {
		if _, ok := app.Stages[st.Name]; ok && !slices.Contains(out, st.Credentials) {
			out = append(out, st.Credentials)
		}
	}
	return out
}

// splitRepository splits an ECR URI (ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME) into its
// registry (the account) and the repository's name; a bare name has no registry.
func splitRepository(uri string) (registry, name string) {
	host, rest, ok := strings.Cut(uri, "/")
	if !ok || !strings.Contains(host, ".") {
		return "", uri
	}
	if account, _, _ := strings.Cut(host, "."); len(account) == 12 && strings.Trim(account, "0123456789") == "" {
		registry = account
	}
	return registry, rest
}

// awsError is AWS's code and message for an error, without the SDK's request details.
func awsError(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
