package metrics

import "github.com/prometheus/client_golang/prometheus"

// recoveryMetrics count what package recovery did: its passes, the redeliveries it asked for or
// left alone, and the missed work it brought in.
type recoveryMetrics struct {
	passes       *prometheus.CounterVec
	redeliveries *prometheus.CounterVec
	recovered    *prometheus.CounterVec
}

func newRecoveryMetrics(reg *prometheus.Registry) *recoveryMetrics {
	r := &recoveryMetrics{
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_recovery_passes_total",
			Help: "Recovery passes this replica ran, by result (done, failed).",
		}, []string{"result"}),
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_recovery_redeliveries_total",
			Help: "Failed webhook deliveries recovery asked GitHub to redeliver (requested), or left alone: their branch moved on (stale), or for good (abandoned).",
		}, []string{"outcome"}),
		recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "stagecoach_recovered_total",
			Help: "Missed work recovery brought in, by how (redelivered: a failed delivery redelivered and taken; reconciled: a ref change never delivered) and event.",
		}, []string{"how", "event"}),
	}
	reg.MustRegister(r.passes, r.redeliveries, r.recovered)
	return r
}

// RecoveryPass implements recovery.Observer.
func (m *Metrics) RecoveryPass(result string) { m.recovery.passes.WithLabelValues(result).Inc() }

// Redelivery implements recovery.Observer.
func (m *Metrics) Redelivery(outcome string) { m.recovery.redeliveries.WithLabelValues(outcome).Inc() }

// Recovered implements recovery.Observer. The event comes from GitHub's delivery log: bounded
// like the deliveries' event label.
func (m *Metrics) Recovered(how, event string) {
	if !knownEvents[event] {
		event = "other"
	}
	m.recovery.recovered.WithLabelValues(how, event).Inc()
}
