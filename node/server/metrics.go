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
	policy        *policyMetrics
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
		policy: newPolicyMetrics(),
	}
	for _, c := range append([]prometheus.Collector{m.requests, m.duration, m.connections, m.subscriptions, m.enqueuedBytes, m.pushed, m.held, m.peakHeld}, m.policy.collectors()...) {
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
