package awstest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Secrets is the fake Secrets Manager. It knows which secrets exist, never their values:
// Stagecoach must only ever describe them.
type Secrets struct {
	env     *Env
	mu      sync.Mutex
	secrets map[string]time.Time
}

// Add makes a secret exist.
func (s *Secrets) Add(id string) { s.mu.Lock(); s.secrets[id] = s.env.clock(); s.mu.Unlock() }

func (s *Secrets) handle(op string, body []byte) (any, *apiError) {
	var in struct {
		SecretID string `json:"SecretId"`
	}
	_ = json.Unmarshal(body, &in)
	s.mu.Lock()
	changed, ok := s.secrets[in.SecretID]
	s.mu.Unlock()
	if !ok {
		return nil, &apiError{"ResourceNotFoundException", "Secrets Manager can't find the specified secret."}
	}
	return map[string]any{
		"ARN":  "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + in.SecretID + "-AbCdEf",
		"Name": in.SecretID, "LastChangedDate": epoch(changed), "CreatedDate": epoch(changed),
	}, nil
}

// ECR is the fake ECR: builds push images to it.
type ECR struct {
	env    *Env
	mu     sync.Mutex
	images map[string]map[string]ecrImage // repository name -> tag -> image
}

type ecrImage struct {
	digest string
	pushed time.Time
}

// Push puts an image with a tag into a repository (a full ECR URI or a name).
func (e *ECR) push(repository, tag, seed string, at time.Time) string {
	name := repository
	if i := strings.Index(repository, "/"); i >= 0 {
		name = repository[i+1:]
	}
	d := digest(seed + name + tag)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.images[name] == nil {
		e.images[name] = map[string]ecrImage{}
	}
	e.images[name][tag] = ecrImage{digest: d, pushed: at}
	return d
}

// Push is push for tests that seed images.
func (e *ECR) Push(repository, tag string) string {
	return e.push(repository, tag, "seed", e.env.clock())
}

func (e *ECR) handle(op string, body []byte) (any, *apiError) {
	var in struct {
		RepositoryName string `json:"repositoryName"`
		ImageIDs       []struct {
			ImageTag    string `json:"imageTag"`
			ImageDigest string `json:"imageDigest"`
		} `json:"imageIds"`
	}
	_ = json.Unmarshal(body, &in)
	e.mu.Lock()
	defer e.mu.Unlock()
	repo, ok := e.images[in.RepositoryName]
	if !ok {
		return nil, &apiError{"RepositoryNotFoundException", fmt.Sprintf("The repository with name '%s' does not exist in the registry with id '123456789012'", in.RepositoryName)}
	}
	var details []any
	for _, id := range in.ImageIDs {
		img, ok := repo[id.ImageTag]
		if !ok {
			return nil, &apiError{"ImageNotFoundException", fmt.Sprintf("The image with imageId {imageTag:'%s'} does not exist within the repository with name '%s'", id.ImageTag, in.RepositoryName)}
		}
		details = append(details, map[string]any{"registryId": "123456789012", "repositoryName": in.RepositoryName,
			"imageDigest": img.digest, "imageTags": []string{id.ImageTag}, "imageSizeInBytes": 52_428_800,
			"imagePushedAt": epoch(img.pushed), "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"})
	}
	return map[string]any{"imageDetails": orEmpty(details)}, nil
}

// STS is the fake STS (awsQuery protocol).
type STS struct {
	env   *Env
	mu    sync.Mutex
	roles map[string]string // role ARN -> required external id ("" for none)
}

// Allow lets the caller assume a role, with an external id when externalID is not empty.
func (s *STS) Allow(roleARN, externalID string) {
	s.mu.Lock()
	s.roles[roleARN] = externalID
	s.mu.Unlock()
}

// AssumeRoleCalls returns the parameters of every AssumeRole call.
func (s *STS) AssumeRoleCalls() []url.Values {
	var out []url.Values
	for _, c := range s.env.Calls("AssumeRole") {
		out = append(out, c.Params)
	}
	return out
}

func (e *Env) serveQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	params, err := url.ParseQuery(string(body))
	op := params.Get("Action")
	call := Call{Service: "sts", Operation: op, Body: body, Params: params}
	defer func() { e.record(call) }()
	m := e.models["sts"]
	in := m.shapeOf(op, "input")
	if err != nil || in == "" || params.Get("Version") != m.Metadata["apiVersion"] {
		e.problem("sts: not an awsQuery request of the model: %q", body)
		call.Status = http.StatusBadRequest
		queryError(w, call.Status, "InvalidAction", "Could not find operation "+op)
		return
	}
	// Query parameters are flat strings: check names and required members against the shape.
	shape := m.Shapes[in]
	members, _ := shape["members"].(map[string]any)
	for k := range params {
		if k == "Action" || k == "Version" {
			continue
		}
		if _, ok := members[k]; !ok {
			e.problem("sts.%s: unknown parameter %s", op, k)
		}
	}
	if req, ok := shape["required"].([]any); ok {
		for _, r := range req {
			if params.Get(r.(string)) == "" {
				e.problem("sts.%s: %s is required", op, r)
			}
		}
	}
	if e.throttled("sts") {
		call.Status = http.StatusBadRequest
		queryError(w, call.Status, "Throttling", "Rate exceeded")
		return
	}
	switch op {
	case "AssumeRole":
		arn := params.Get("RoleArn")
		e.STS.mu.Lock()
		ext, ok := e.STS.roles[arn]
		e.STS.mu.Unlock()
		if !ok || ext != params.Get("ExternalId") {
			call.Status = http.StatusForbidden
			queryError(w, call.Status, "AccessDenied", fmt.Sprintf("User: arn:aws:iam::123456789012:user/stagecoach is not authorized to perform: sts:AssumeRole on resource: %s", arn))
			return
		}
		session := params.Get("RoleSessionName")
		role := arn[strings.LastIndex(arn, "/")+1:]
		call.Status = http.StatusOK
		writeXML(w, assumeRoleResponse{
			Result: assumeRoleResult{
				Credentials: stsCredentials{AccessKeyID: "ASIA" + strings.ToUpper(requestID()[:12]), SecretAccessKey: "fake-secret",
					SessionToken: "fake-session-token", Expiration: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, // the client checks expiry by its own clock
				User: assumedRoleUser{AssumedRoleID: "AROAFAKE:" + session, Arn: "arn:aws:sts::123456789012:assumed-role/" + role + "/" + session},
			},
			Meta: responseMetadata{RequestID: requestID()},
		})
	case "GetCallerIdentity":
		call.Status = http.StatusOK
		writeXML(w, callerIdentityResponse{Result: callerIdentityResult{Arn: "arn:aws:iam::123456789012:user/stagecoach",
			UserID: "AIDAFAKE", Account: "123456789012"}, Meta: responseMetadata{RequestID: requestID()}})
	}
}

type assumeRoleResponse struct {
	XMLName xml.Name         `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result  assumeRoleResult `xml:"AssumeRoleResult"`
	Meta    responseMetadata `xml:"ResponseMetadata"`
}

type assumeRoleResult struct {
	Credentials stsCredentials  `xml:"Credentials"`
	User        assumedRoleUser `xml:"AssumedRoleUser"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type callerIdentityResponse struct {
	XMLName xml.Name             `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
	Result  callerIdentityResult `xml:"GetCallerIdentityResult"`
	Meta    responseMetadata     `xml:"ResponseMetadata"`
}

type callerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func writeXML(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(v)
}

func queryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		code, xmlEscape(msg), requestID())
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
