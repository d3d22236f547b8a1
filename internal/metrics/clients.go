package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stagecoach/stagecoach/internal/deploy"
)

// clientMetrics count the calls Stagecoach makes to GitHub and AWS, and the end of deploys.
type clientMetrics struct {
	githubCalls     *prometheus.CounterVec
	githubRemaining prometheus.Gauge
	awsCalls        *prometheus.CounterVec
	deploys         *prometheus.HistogramVec
	commands        *prometheus.CounterVec
}

func newClientMetrics(reg *prometheus.Registry) *clientMetrics {
	c := &clientMetrics{
		githubCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_github_requests_total",
			Help: "Requests to GitHub's API, by status code (0: no answer).",
		}, []string{"code"}),
		githubRemaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "stagecoach_github_rate_limit_remaining",
			Help: "X-RateLimit-Remaining of GitHub's latest answer.",
		}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_aws_requests_total",
			Help: "Requests to AWS, by service and status code (0: no answer).",
		}, []string{"service", "code"}),
		deploys: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "stagecoach_deploy_duration_seconds",
			Help:    "Deploys that ended, by stage and result, with how long they took from start to end.",
			Buckets: []float64{30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600},
		}, []string{"stage", "result"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_commands_total",
			Help: "Commands and check-run button presses carried out, by verb and outcome (accepted, refused).",
		}, []string{"verb", "outcome"}),
	}
	reg.MustRegister(c.githubCalls, c.githubRemaining, c.awsCalls, c.deploys, c.commands)
	return c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// GitHubTransport counts every request to GitHub through next and tracks the rate limit left.
func (m *Metrics) GitHubTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		code := 0
		if resp != nil {
			code = resp.StatusCode
			if n, err := strconv.Atoi(resp.Header.Get("X-RateLimit-Remaining")); err == nil {
				m.clients.githubRemaining.Set(float64(n))
			}
		}
		m.clients.githubCalls.WithLabelValues(strconv.Itoa(code)).Inc()
		return resp, err
	})
}

// awsServices names the services by their X-Amz-Target prefix (JSON protocols).
var awsServices = map[string]string{
	"CodeBuild_20161006": "codebuild", "secretsmanager": "secretsmanager", "AmazonEC2ContainerRegistry_V20150921": "ecr",
}

// Doer sends HTTP requests; *http.Client and the AWS SDK's clients are Doers.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// AWSClient counts every request to AWS through next, by service. It wraps the SDK's HTTP
// client after the configuration is loaded, so settings such as a custom CA bundle still apply.
func (m *Metrics) AWSClient(next Doer) Doer {
	return doerFunc(func(r *http.Request) (*http.Response, error) {
		service := "other"
		if t := r.Header.Get("X-Amz-Target"); t != "" {
			prefix, _, _ := strings.Cut(t, ".")
			if s, ok := awsServices[prefix]; ok {
				service = s
			}
		} else if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			service = "sts" // the only query-protocol service Stagecoach calls
		}
		resp, err := next.Do(r)
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		m.clients.awsCalls.WithLabelValues(service, strconv.Itoa(code)).Inc()
		return resp, err
	})
}

// DeployEnded records a deploy that reached a final state.
func (m *Metrics) DeployEnded(d deploy.Deploy, took time.Duration) {
	stage := d.Stage
	if d.Mode == deploy.ModePRBuild {
		stage = "pr" // one series for every pull request's builds, not one per pull request
	}
	m.clients.deploys.WithLabelValues(stage, string(d.State)).Observe(took.Seconds())
}

// CommandDone counts a command or button press by its verb and outcome (accepted, refused).
func (m *Metrics) CommandDone(verb, outcome string) {
	m.clients.commands.WithLabelValues(verb, outcome).Inc()
}
