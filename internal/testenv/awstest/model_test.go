package awstest

import (
	"net/url"
	"strings"
	"testing"
)

func mustModel(t *testing.T, service string) *model {
	t.Helper()
	m, err := loadModel(service)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidateJSON(t *testing.T) {
	cb, ecr := mustModel(t, "codebuild"), mustModel(t, "ecr")
	envVar := func(typ string) map[string]any { return map[string]any{"name": "A", "value": "b", "type": typ} }
	for _, tt := range []struct {
		name  string
		m     *model
		shape string
		v     any
		want  string // "" for valid
	}{
		{"valid StartBuild", cb, "StartBuildInput", map[string]any{"projectName": "p", "environmentVariablesOverride": []any{envVar("SECRETS_MANAGER")}}, ""},
		{"missing required member", cb, "StartBuildInput", map[string]any{"sourceVersion": "x"}, "projectName is required"},
		{"required member null", cb, "StartBuildInput", map[string]any{"projectName": nil}, "projectName is required"},
		{"unknown member", cb, "StartBuildInput", map[string]any{"projectName": "p", "bogus": 1.0}, `unknown member "bogus"`},
		{"enum", cb, "StartBuildInput", map[string]any{"projectName": "p", "environmentVariablesOverride": []any{envVar("SECRET")}}, `"SECRET" is not one of`},
		{"integer as text", cb, "StartBuildInput", map[string]any{"projectName": "p", "timeoutInMinutesOverride": "5"}, "want an integer"},
		{"fractional integer", cb, "StartBuildInput", map[string]any{"projectName": "p", "timeoutInMinutesOverride": 5.5}, "want an integer"},
		{"integer below min", cb, "StartBuildInput", map[string]any{"projectName": "p", "timeoutInMinutesOverride": 1.0}, "less than 5"},
		{"integer above max", cb, "StartBuildInput", map[string]any{"projectName": "p", "timeoutInMinutesOverride": 5000.0}, "more than"},
		{"string too short", cb, "StartBuildInput", map[string]any{"projectName": ""}, "length 0 is less than 1"},
		{"boolean as text", cb, "StartBuildInput", map[string]any{"projectName": "p", "privilegedModeOverride": "true"}, "want a boolean"},
		{"list as object", cb, "BatchGetBuildsInput", map[string]any{"ids": map[string]any{}}, "want a list"},
		{"empty list below min", cb, "BatchGetBuildsInput", map[string]any{"ids": []any{}}, "length 0 is less than 1"},
		{"list above max", cb, "BatchGetBuildsInput", map[string]any{"ids": make([]any, 101)}, "length 101 is more than 100"},
		{"structure as text", cb, "Build", "build", "want an object"},
		{"timestamp as text", cb, "Build", map[string]any{"startTime": "2026-11-24T12:00:00Z"}, "want epoch seconds as a number"},
		{"timestamp as number", cb, "Build", map[string]any{"startTime": 1795521600.123}, ""},
		{"nested member", cb, "Build", map[string]any{"phases": []any{map[string]any{"phaseType": "TESTING"}}}, `phases[0].phaseType: "TESTING" is not one of`},
		{"pattern", ecr, "DescribeImagesRequest", map[string]any{"repositoryName": "Hello"}, "does not match"},
		{"pattern, whole value", ecr, "DescribeImagesRequest", map[string]any{"repositoryName": "hello", "registryId": "1234567890123"}, "does not match"},
		{"valid pattern", ecr, "DescribeImagesRequest", map[string]any{"repositoryName": "team/hello-web", "registryId": Account}, ""},
		{"map", mustModel(t, "secretsmanager"), "DescribeSecretResponse", map[string]any{"VersionIdsToStages": map[string]any{"v1": "AWSCURRENT"}}, "VersionIdsToStages.v1: want a list"},
		{"error body", cb, "ResourceNotFoundException", map[string]any{"__type": "ResourceNotFoundException", "message": "gone"}, ""},
		{"unknown shape", cb, "NoSuchShape", map[string]any{}, "not in the model"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			probs := strings.Join(tt.m.validate(tt.shape, tt.v, "in"), "; ")
			if tt.want == "" && probs != "" {
				t.Errorf("problems %q, want none", probs)
			}
			if !strings.Contains(probs, tt.want) {
				t.Errorf("problems %q, want %q", probs, tt.want)
			}
		})
	}
}

func TestDecodeQuery(t *testing.T) {
	m := mustModel(t, "sts")
	const role = "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx"
	for _, tt := range []struct {
		name   string
		form   string
		want   string // "" for valid
		unused string
	}{
		{name: "AssumeRole", form: role + "&RoleSessionName=stagecoach-x&DurationSeconds=900"},
		{name: "tags", form: role + "&RoleSessionName=ab&Tags.member.1.Key=app&Tags.member.1.Value=hello&Tags.member.2.Key=stage&Tags.member.2.Value=test"},
		{name: "empty list", form: role + "&RoleSessionName=ab&TransitiveTagKeys="},
		{name: "tag without its value", form: role + "&RoleSessionName=ab&Tags.member.1.Key=app", want: "Tags[0]: Value is required"},
		{name: "duration too short", form: role + "&RoleSessionName=ab&DurationSeconds=60", want: "60 is less than 900"},
		{name: "duration not a number", form: role + "&RoleSessionName=ab&DurationSeconds=soon", want: "want an integer"},
		{name: "session name too short", form: role + "&RoleSessionName=x", want: "length 1 is less than 2"},
		{name: "session name with a space", form: role + "&RoleSessionName=a+b", want: "does not match"},
		{name: "missing role", form: "RoleSessionName=ab", want: "RoleArn is required"},
		{name: "unknown parameter", form: role + "&RoleSessionName=ab&Role=a", unused: "Role"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			params, err := url.ParseQuery(tt.form)
			if err != nil {
				t.Fatal(err)
			}
			used := map[string]bool{}
			probs := strings.Join(m.validate("AssumeRoleRequest", decodeQuery(m, "AssumeRoleRequest", "", params, used), "AssumeRole"), "; ")
			if tt.want == "" && probs != "" {
				t.Errorf("problems %q, want none", probs)
			}
			if !strings.Contains(probs, tt.want) {
				t.Errorf("problems %q, want %q", probs, tt.want)
			}
			var unused []string
			for k := range params {
				if !used[k] {
					unused = append(unused, k)
				}
			}
			if strings.Join(unused, ",") != tt.unused {
				t.Errorf("unused parameters %v, want %q", unused, tt.unused)
			}
		})
	}
}

func TestCheckQueryResponse(t *testing.T) {
	m := mustModel(t, "sts")
	const ns = `xmlns="https://sts.amazonaws.com/doc/2011-06-15/"`
	const meta = `<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>`
	creds := `<Credentials><AccessKeyId>ASIA0123456789ABCDEF</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2026-11-24T13:00:00Z</Expiration></Credentials>`
	user := `<AssumedRoleUser><AssumedRoleId>AROA1:s</AssumedRoleId><Arn>arn:aws:sts::1:assumed-role/x/s</Arn></AssumedRoleUser>`
	for _, tt := range []struct {
		name, op, doc, want string
	}{
		{"valid", "AssumeRole", `<AssumeRoleResponse ` + ns + `><AssumeRoleResult>` + creds + user + `</AssumeRoleResult>` + meta + `</AssumeRoleResponse>`, ""},
		{"wrong namespace", "AssumeRole", `<AssumeRoleResponse><AssumeRoleResult>` + creds + user + `</AssumeRoleResult>` + meta + `</AssumeRoleResponse>`, "root element"},
		{"no result wrapper", "AssumeRole", `<AssumeRoleResponse ` + ns + `>` + creds + meta + `</AssumeRoleResponse>`, "unexpected element Credentials"},
		{"missing credential member", "AssumeRole", `<AssumeRoleResponse ` + ns + `><AssumeRoleResult><Credentials><AccessKeyId>ASIA0123456789ABCDEF</AccessKeyId></Credentials></AssumeRoleResult>` + meta + `</AssumeRoleResponse>`, "SecretAccessKey is required"},
		{"epoch timestamp", "AssumeRole", `<AssumeRoleResponse ` + ns + `><AssumeRoleResult>` + strings.Replace(creds, "2026-11-24T13:00:00Z", "1795525200", 1) + `</AssumeRoleResult>` + meta + `</AssumeRoleResponse>`, "want an ISO 8601 timestamp"},
		{"key with a dash", "AssumeRole", `<AssumeRoleResponse ` + ns + `><AssumeRoleResult>` + strings.Replace(creds, "ASIA0123456789ABCDEF", "ASIA-0123456789ABCDE", 1) + `</AssumeRoleResult>` + meta + `</AssumeRoleResponse>`, "does not match"},
		{"unknown element", "GetCallerIdentity", `<GetCallerIdentityResponse ` + ns + `><GetCallerIdentityResult><Account>1</Account><Org>o</Org></GetCallerIdentityResult>` + meta + `</GetCallerIdentityResponse>`, "unknown element Org"},
		{"no request id", "GetCallerIdentity", `<GetCallerIdentityResponse ` + ns + `><GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`, "ResponseMetadata/RequestId"},
		{"not XML", "GetCallerIdentity", `<GetCallerIdentityResponse>`, "not XML"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			probs := strings.Join(checkQueryResponse(m, tt.op, []byte(tt.doc)), "; ")
			if tt.want == "" && probs != "" {
				t.Errorf("problems %q, want none", probs)
			}
			if !strings.Contains(probs, tt.want) {
				t.Errorf("problems %q, want %q", probs, tt.want)
			}
		})
	}
}

func TestErrorAllowed(t *testing.T) {
	cb, sts := mustModel(t, "codebuild"), mustModel(t, "sts")
	for _, tt := range []struct {
		m    *model
		op   string
		code string
		want bool
	}{
		{cb, "StartBuild", "ResourceNotFoundException", true},
		{cb, "StartBuild", "ThrottlingException", true},
		{cb, "BatchGetBuilds", "ResourceNotFoundException", false},
		{sts, "AssumeRole", "MalformedPolicyDocument", true}, // the code of MalformedPolicyDocumentException
		{sts, "AssumeRole", "AccessDenied", true},
		{sts, "GetCallerIdentity", "RegionDisabledException", false},
	} {
		if got := tt.m.errorAllowed(tt.op, tt.code); got != tt.want {
			t.Errorf("errorAllowed(%s, %s) = %v, want %v", tt.op, tt.code, got, tt.want)
		}
	}
}

// TestModelPatternsCompile makes sure no pattern of the models goes unchecked for want of RE2
// syntax.
func TestModelPatternsCompile(t *testing.T) {
	for _, s := range []string{"codebuild", "secretsmanager", "ecr", "sts"} {
		m := mustModel(t, s)
		for name, shape := range m.Shapes {
			if _, ok := shape["pattern"]; ok && m.patterns[name] == nil {
				t.Errorf("%s: pattern of %s = %q does not compile", s, name, shape["pattern"])
			}
		}
	}
}
