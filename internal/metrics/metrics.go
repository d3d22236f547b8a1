// Package metrics exposes Stagecoach's Prometheus metrics: webhook deliveries by event and
// result, calls to GitHub (with the rate limit left) and AWS, ended deploys by stage and result
// with their durations, and recovery's passes, redeliveries and recovered work, counted as they
// happen; deploys by state and pending jobs by
// kind, read from the store when scraped so every replica reports the same truth.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stagecoach/stagecoach/internal/deploy"
	"github.com/stagecoach/stagecoach/internal/webhook"
)

// Store is what the scrape-time metrics read.
type Store interface {
	CountDeploys(ctx context.Context) (map[deploy.State]int, error)
	PendingJobs(ctx context.Context) (map[string]int, error)
}

// Metrics owns a registry and the metrics on it.
type Metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec

	mu     sync.Mutex
	counts map[[2]string]prometheus.Counter // curried counters: no label hashing per delivery

	clients  *clientMetrics
	recovery *recoveryMetrics
}

// knownEvents bounds the event label: the header is sent before authentication, so an
// attacker could otherwise mint a new time series per request.
var knownEvents = map[string]bool{
	"ping": true, "push": true, "pull_request": true, "create": true, "delete": true,
	"issue_comment": true, "check_run": true, "check_suite": true, "installation": true,
	"installation_repositories": true, "release": true, "merge_group": true, "": true,
}

// New registers the metrics, including Go and process collectors.
func New(st Store, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_webhook_deliveries_total",
			Help: "Webhook deliveries received, by event and result (accepted, duplicate, ignored, ping, unauthorized, malformed, too_large, busy, timeout, error).",
		}, []string{"event", "result"}),
		counts: map[[2]string]prometheus.Counter{},
	}
	m.reg.MustRegister(m.deliveries, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.clients = newClientMetrics(m.reg)
	m.recovery = newRecoveryMetrics(m.reg)
	if st != nil {
		m.reg.MustRegister(&storeCollector{st: st, log: log})
	}
	return m
}

// Delivered implements webhook.Observer.
func (m *Metrics) Delivered(event string, result webhook.Result) {
	if !knownEvents[event] {
		event = "other"
	}
	key := [2]string{event, string(result)}
	m.mu.Lock()
	c, ok := m.counts[key]
	if !ok {
		c = m.deliveries.WithLabelValues(event, string(result))
		m.counts[key] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry, for packages that add their own metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var (
	deploysDesc = prometheus.NewDesc("stagecoach_deploys", "Deploys in the store, by state.", []string{"state"}, nil)
	jobsDesc    = prometheus.NewDesc("stagecoach_jobs_pending", "Jobs waiting to run, by kind.", []string{"kind"}, nil)
	upDesc      = prometheus.NewDesc("stagecoach_store_up", "Whether the last scrape could read the store.", nil, nil)
)

// storeCollector reads counts from the store at scrape time.
type storeCollector struct {
	st  Store
	log *slog.Logger
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deploysDesc
	ch <- jobsDesc
	ch <- upDesc
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	up := 1.0
	counts, err := c.st.CountDeploys(ctx)
	if err != nil {
		c.log.Warn("metrics: counting deploys", "err", err)
		up = 0
	}
	for _, s := range deploy.States {
		if err == nil {
			ch <- prometheus.MustNewConstMetric(deploysDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
	pending, err := c.st.PendingJobs(ctx)
	if err != nil {
		c.log.Warn("metrics: counting jobs", "err", err)
		up = 0
	}
	for kind, n := range pending {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), kind)
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
}
