package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svcdisc/svcdisc/envgen"
)

// Webhook registers the admission webhook's metrics and returns the
// envgen.Observer that updates them. certReloads, when not nil, is read at
// scrape time for the count of serving certificate reloads.
func (m *Metrics) Webhook(services func() int, certReloads func() uint64) envgen.Observer {
	const sub = "webhook"
	admissions := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: "admissions_total",
		Help: "Admission requests by result: patched, unchanged, opted_out, ignored (not a Pod create), error (Pod unreadable, allowed unchanged), rejected (not an AdmissionReview)."},
		[]string{"result"})
	for _, r := range []string{envgen.ResultPatched, envgen.ResultUnchanged, envgen.ResultOptedOut, envgen.ResultIgnored, envgen.ResultError, envgen.ResultRejected} {
		admissions.WithLabelValues(r)
	}
	injected := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: "injected_variables_total",
		Help: "Environment variables added to containers by patches."})
	warnings := prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: "warnings_total",
		Help: "Warnings returned in admission responses (limits reached, services not found)."})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: sub, Name: "admission_duration_seconds",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), Help: "Time to answer an admission request, from the request to the response written."})
	m.Registry.MustRegister(admissions, injected, warnings, duration)
	if services != nil {
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Subsystem: sub, Name: "services",
			Help: "Services known to the webhook."}, func() float64 { return float64(services()) }))
	}
	if certReloads != nil {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: "certificate_reloads_total",
			Help: "Times the serving certificate was reloaded from its files."}, func() float64 { return float64(certReloads()) }))
	}
	return func(result string, n, w int, d time.Duration) {
		admissions.WithLabelValues(result).Inc()
		injected.Add(float64(n))
		warnings.Add(float64(w))
		duration.Observe(d.Seconds())
	}
}
