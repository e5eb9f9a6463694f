package envgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkWebhook answers the AdmissionReview of a Pod with three
// containers in a namespace of 1,000 Services, at the HTTP handler, and
// reports p50/p99 besides the mean.
func BenchmarkWebhook(b *testing.B) {
	for _, bc := range []struct {
		name   string
		limits Limits
	}{
		{"1000svc-default-limits", DefaultLimits},
		{"1000svc-unlimited", Limits{}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store := NewStore()
			store.Update(slimService(b, svc("default", "kubernetes", []string{"10.96.0.1"}, port("https", "", 443))))
			for i := range 1000 {
				store.Update(slimService(b, svc("big", fmt.Sprintf("svc-%d", i), []string{fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)},
					port("http", "", 80), port("metrics", "", 9090))))
			}
			store.MarkSynced()
			h := &Webhook{Mutator: &Mutator{Store: store, Limits: bc.limits}}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: []corev1.Container{
				{Name: "a", Image: "x", Env: []corev1.EnvVar{{Name: "A", Value: "1"}}}, {Name: "b", Image: "x"}, {Name: "c", Image: "x"}}}}
			raw, _ := json.Marshal(pod)
			body, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
				"uid": "u", "operation": "CREATE", "namespace": "big", "resource": map[string]string{"version": "v1", "resource": "pods"},
				"object": json.RawMessage(raw)}})
			store.Env("big", true) // the first admission in a namespace builds its set
			d := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body)))
				d = append(d, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
			b.StopTimer()
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkEnvSet builds a namespace's set from scratch, as after a change
// to one of its Services.
func BenchmarkEnvSet(b *testing.B) {
	store := NewStore()
	for i := range 1000 {
		store.Update(slimService(b, svc("big", fmt.Sprintf("svc-%d", i), []string{"10.96.0.1"}, port("http", "", 80))))
	}
	b.ReportAllocs()
	for b.Loop() {
		store.Update(slimService(b, svc("big", "svc-0", []string{"10.96.0.1"}, port("http", "", 80))))
		store.Env("big", true)
	}
}
