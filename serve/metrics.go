package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers (in tests) do not collide.
type metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec   // endpoint, code
	latency  *prometheus.HistogramVec // endpoint
	ttft     prometheus.Histogram

	promptTokens    prometheus.Counter
	generatedTokens prometheus.Counter
	finished        *prometheus.CounterVec // reason
	steps           prometheus.Counter

	queueDepth prometheus.Gauge
	batchSize  prometheus.Gauge
	caches     prometheus.Gauge
}

func newMetrics() *metrics {
	latencyBuckets := prometheus.ExponentialBuckets(0.001, 2, 18) // 1ms .. 131s
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpt2_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gpt2_http_request_duration_seconds", Help: "Time from a request's arrival to the end of its response.",
			Buckets: latencyBuckets,
		}, []string{"endpoint"}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gpt2_time_to_first_token_seconds", Help: "Time from a completion request's arrival to its first generated token.",
			Buckets: latencyBuckets,
		}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpt2_prompt_tokens_total", Help: "Prompt tokens fed to the model (once per choice).",
		}),
		generatedTokens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpt2_generated_tokens_total", Help: "Tokens generated.",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpt2_sequences_finished_total",
			Help: "Sequences (one per choice) that left the batch, by why: stop, length, cancelled (the client left), timeout, error, shutdown.",
		}, []string{"reason"}),
		steps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpt2_forward_steps_total", Help: "Batched forward passes run.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpt2_queue_depth", Help: "Completion requests waiting for a place in the batch.",
		}),
		batchSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpt2_batch_size", Help: "Sequences in the running batch.",
		}),
		caches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpt2_kv_caches", Help: "Key/value caches allocated (at most --max-batch; reused).",
		}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.ttft, m.promptTokens, m.generatedTokens,
		m.finished, m.steps, m.queueDepth, m.batchSize, m.caches,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"stop", "length", endCancelled, endTimeout, endError, endShutdown} {
		m.finished.WithLabelValues(r) // show zeros before the first
	}
	return m
}
