package config

import "time"

// Pipeline tunes how deploys ride out faults and crashes.
type Pipeline struct {
	// RetryBudget is how long one step of a deploy keeps retrying transient AWS and Kubernetes
	// errors (throttling, 5xx, timeouts, a connection refused) from the first one in a row;
	// then the deploy fails, and rolls back what it changed. Default 30m. A running build is
	// followed for as long as it runs: only failures to read it count.
	RetryBudget time.Duration `yaml:"retry_budget"`
	// Lease is how long a replica's claim on a deploy lasts without a heartbeat (one every
	// quarter of it, on the database's clock): a replica that dies hands its deploys over
	// within this. Default 5s.
	Lease time.Duration `yaml:"lease"`
}

// Retention says how long the store keeps what only history needs; deploys are always kept.
type Retention struct {
	// Deliveries are webhook delivery ids, which make a redelivery a duplicate. Default 720h
	// (30 days); at least 72h, GitHub's redelivery window.
	Deliveries time.Duration `yaml:"deliveries"`
	// Jobs are finished background jobs (done or failed). Default 720h; at least 1h.
	Jobs time.Duration `yaml:"jobs"`
	// Commands are the audit trail of commands and their outcomes. Default 8760h (a year);
	// at least 24h.
	Commands time.Duration `yaml:"commands"`
}

// The defaults and the least each may be.
const (
	DefaultRetryBudget         = 30 * time.Minute
	DefaultLease               = 5 * time.Second
	DefaultDeliveriesRetention = 30 * 24 * time.Hour
	DefaultJobsRetention       = 30 * 24 * time.Hour
	DefaultCommandsRetention   = 365 * 24 * time.Hour

	minRetryBudget         = time.Minute
	minLease               = 2 * time.Second
	maxLease               = 10 * time.Minute
	minDeliveriesRetention = 72 * time.Hour
	minJobsRetention       = time.Hour
	minCommandsRetention   = 24 * time.Hour
)

func (c *Config) durabilityDefaults() {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.Pipeline.RetryBudget, DefaultRetryBudget},
		{&c.Pipeline.Lease, DefaultLease},
		{&c.Retention.Deliveries, DefaultDeliveriesRetention},
		{&c.Retention.Jobs, DefaultJobsRetention},
		{&c.Retention.Commands, DefaultCommandsRetention},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
}

func (v *validator) durability() {
	for _, d := range []struct {
		field    string
		v        time.Duration
		min, max time.Duration
		why      string
	}{
		{"pipeline.retry_budget", v.c.Pipeline.RetryBudget, minRetryBudget, 0, "a shorter budget fails deploys on a brief outage"},
		{"pipeline.lease", v.c.Pipeline.Lease, minLease, maxLease, "heartbeats renew it every quarter; a long lease delays the hand-over of a dead replica's deploys"},
		{"retention.deliveries", v.c.Retention.Deliveries, minDeliveriesRetention, 0, "GitHub redelivers for three days, and a redelivery of a forgotten delivery would do its work again"},
		{"retention.jobs", v.c.Retention.Jobs, minJobsRetention, 0, ""},
		{"retention.commands", v.c.Retention.Commands, minCommandsRetention, 0, ""},
	} {
		switch {
		case d.v < d.min:
			msg := "must be at least %s, got %s"
			if d.why != "" {
				msg += ": " + d.why
			}
			v.add(d.field, msg, d.min, d.v)
		case d.max > 0 && d.v > d.max:
			v.add(d.field, "must be at most %s, got %s: %s", d.max, d.v, d.why)
		}
	}
}
