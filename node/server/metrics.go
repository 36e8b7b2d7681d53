package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the node's Prometheus instruments. A nil *Metrics records
// nothing.
type Metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	enqueuedBytes prometheus.Counter
	pushed        prometheus.Counter
	held          prometheus.Gauge
	peakHeld      prometheus.Histogram

	// Registration, quotas, expiry and the KeyPackage directory.
	refusals      *prometheus.CounterVec
	registrations *prometheus.CounterVec
	diskUsedBytes prometheus.Gauge
	expired       prometheus.Counter
	notices       prometheus.Counter
}

// NewMetrics creates the node's instruments and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "requests_total",
			Help: "RPC calls by method and result (ok or an error code).",
		}, []string{"method", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "qpnode", Name: "request_duration_seconds",
			Help:    "Time to serve an RPC call.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}, []string{"method"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "qpnode", Name: "connections",
			Help: "Open client connections.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "qpnode", Name: "subscriptions",
			Help: "Active push subscriptions.",
		}),
		enqueuedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "enqueued_bytes_total",
			Help: "Payload bytes stored by enqueue.",
		}),
		pushed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "pushed_messages_total",
			Help: "Messages delivered to subscribers.",
		}),
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "qpnode", Name: "rpc_held_bytes",
			Help: "Bytes of RPC messages all connections hold now (what the memory budget bounds).",
		}),
		peakHeld: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "qpnode", Name: "rpc_connection_peak_held_bytes",
			Help:    "The most bytes of RPC messages each closed connection held at once.",
			Buckets: prometheus.ExponentialBuckets(4<<10, 4, 9),
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "limit_refusals_total",
			Help: "Calls refused or downgraded, and connections refused or closed, by a limit, by kind (quota, diskFull, unknownRecipient, keyPackageFetchRate, keyPackageTargetRate, deviceListRate, revokedDevices; conns, connsPerIP, connsPerIdentity, frameSize, openAnswers, heldBytes, memoryBudget, idle, ...).",
		}, []string{"kind"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "qpnode", Name: "registrations_total",
			Help: "Identities registered, by how (token or proof of work).",
		}, []string{"how"}),
		diskUsedBytes: prometheus.NewGauge(prometheus.GaugeOpts{
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
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connections, m.subscriptions, m.enqueuedBytes, m.pushed, m.held, m.peakHeld,
		m.refusals, m.registrations, m.diskUsedBytes, m.expired, m.notices} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) request(method, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, result).Inc()
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

func (m *Metrics) connectionDelta(d float64) {
	if m != nil {
		m.connections.Add(d)
	}
}

func (m *Metrics) subscriptionDelta(d float64) {
	if m != nil {
		m.subscriptions.Add(d)
	}
}

func (m *Metrics) enqueued(n int) {
	if m != nil {
		m.enqueuedBytes.Add(float64(n))
	}
}

func (m *Metrics) pushedMessages(n int) {
	if m != nil {
		m.pushed.Add(float64(n))
	}
}

// heldDelta is the transport's OnHeld: nil-safe as a method value.
func (m *Metrics) heldDelta(n int64) {
	if m != nil {
		m.held.Add(float64(n))
	}
}

func (m *Metrics) connectionPeak(n int64) {
	if m != nil {
		m.peakHeld.Observe(float64(n))
	}
}

func (m *Metrics) refused(kind string) {
	if m != nil {
		m.refusals.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) registration(how string) {
	if m != nil {
		m.registrations.WithLabelValues(how).Inc()
	}
}

func (m *Metrics) diskUsed(n int64) {
	if m != nil {
		m.diskUsedBytes.Set(float64(n))
	}
}

func (m *Metrics) expiredMessages(n int) {
	if m != nil {
		m.expired.Add(float64(n))
	}
}

func (m *Metrics) lowWaterNotice() {
	if m != nil {
		m.notices.Inc()
	}
}
