package server

import "github.com/prometheus/client_golang/prometheus"

// policyMetrics are the metrics of registration, quotas and expiry.
type policyMetrics struct {
	refusals      *prometheus.CounterVec
	registrations *prometheus.CounterVec
	diskUsed      prometheus.Gauge
	expired       prometheus.Counter
	notices       prometheus.Counter
}

func newPolicyMetrics() *policyMetrics {
	return &policyMetrics{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "limit_refusals_total",
			Help: "Calls refused or downgraded, and connections refused or closed, by a limit, by kind (quota, diskFull, unknownRecipient, keyPackageFetchRate, keyPackageTargetRate; conns, connsPerIP, connsPerIdentity, frameSize, openAnswers, heldBytes, memoryBudget, idle, ...).",
		}, []string{"kind"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "registrations_total",
			Help: "Identities registered, by how (token or proof of work).",
		}, []string{"how"}),
		diskUsed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "qpnode", Name: "disk_used_bytes",
			Help: "Bytes the store takes, at the last reading.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "expired_messages_total",
			Help: "Messages deleted for being older than the message TTL.",
		}),
		notices: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "keypackage_low_notices_total",
			Help: "Low-water notices queued for identities whose KeyPackages run low.",
		}),
	}
}

func (p *policyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{p.refusals, p.registrations, p.diskUsed, p.expired, p.notices}
}

func (m *Metrics) refused(kind string) {
	if m != nil {
		m.policy.refusals.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) registration(how string) {
	if m != nil {
		m.policy.registrations.WithLabelValues(how).Inc()
	}
}

func (m *Metrics) diskUsed(n int64) {
	if m != nil {
		m.policy.diskUsed.Set(float64(n))
	}
}

func (m *Metrics) expiredMessages(n int) {
	if m != nil {
		m.policy.expired.Add(float64(n))
	}
}

func (m *Metrics) lowWaterNotice() {
	if m != nil {
		m.policy.notices.Inc()
	}
}
