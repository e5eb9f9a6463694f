package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// webhookNamespace creates a namespace labelled for one test's webhook
// configuration, so that no other test's Pods are sent to it.
func (e *kubeEnv) webhookNamespace(t testing.TB, prefix, label string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, rand.Uint32())
	_, err := e.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Labels: map[string]string{"svcdisc.io/env-injection": label}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// registerWebhook points a MutatingWebhookConfiguration with the deploy/
// defaults (failurePolicy Ignore, 5 s, sideEffects None) at the webhook.
func (e *kubeEnv) registerWebhook(t testing.TB, w *testWebhook, label string) {
	t.Helper()
	url := w.url("/mutate")
	ignore := admissionregistrationv1.Ignore
	none := admissionregistrationv1.SideEffectClassNone
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	scope := admissionregistrationv1.NamespacedScope
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "svcdisc-test-" + label},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "env.svcdisc.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: w.bundle.CACert},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope}}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			TimeoutSeconds:          new(int32(5)),
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &ifNeeded,
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"svcdisc.io/env-injection": label}},
		}},
	}
	ctx := context.Background()
	if _, err := e.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	})
}

func testPod(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
			Containers: []corev1.Container{
				{Name: "app", Image: "busybox", Env: []corev1.EnvVar{{Name: "UPSTREAM", Value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"}, {Name: "WEB_SERVICE_PORT", Value: "mine"}}},
				{Name: "sidecar", Image: "busybox"},
			},
		},
	}
}

func envMap(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestWebhookWithAPIServer(t *testing.T) {
	env := needKube(t)
	ctx := context.Background()
	label := fmt.Sprintf("t%d", rand.Uint32())
	ns := env.webhookNamespace(t, "wh", label)
	other := env.namespace(t, "wh-other")

	mk := func(ns, name string, headless bool, ports ...corev1.ServicePort) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
		if headless {
			s.Spec.ClusterIP = corev1.ClusterIPNone
		}
		out, err := env.client.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	web := mk(ns, "web", false, corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	mk(ns, "db", true, corev1.ServicePort{Port: 5432})
	cache := mk(other, "cache", false, corev1.ServicePort{Name: "redis", Port: 6379})
	master, err := env.client.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	w := startTestWebhook(t, webhookOptions{kubeconfig: env.kubeconfig})
	waitReady(t, w)
	env.registerWebhook(t, w, label)

	create := func(p *corev1.Pod, opts metav1.CreateOptions) *corev1.Pod {
		t.Helper()
		out, err := env.client.CoreV1().Pods(ns).Create(ctx, p, opts)
		if err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
		return out
	}
	// The API server picks up a new webhook configuration asynchronously:
	// create Pods until one comes back mutated.
	deadline := time.Now().Add(30 * time.Second)
	var pod *corev1.Pod
	for i := 0; ; i++ {
		pod = create(testPod(fmt.Sprintf("probe-%d", i), nil), metav1.CreateOptions{})
		if _, ok := envMap(pod.Spec.Containers[1])["WEB_SERVICE_HOST"]; ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pod was mutated within 30s: %+v", pod.Spec.Containers[1].Env)
		}
		time.Sleep(200 * time.Millisecond)
	}

	t.Run("pods get kubelet's variables, their own entries kept after them", func(t *testing.T) {
		pod, err := env.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"WEB_SERVICE_HOST":        web.Spec.ClusterIP,
			"WEB_SERVICE_PORT_HTTP":   "80",
			"WEB_PORT_53_UDP":         "udp://" + web.Spec.ClusterIP + ":53",
			"KUBERNETES_SERVICE_HOST": master.Spec.ClusterIP,
			"KUBERNETES_PORT_443_TCP": "tcp://" + master.Spec.ClusterIP + ":443",
		}
		for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
			got := envMap(c)
			for k, v := range want {
				if got[k] != v {
					t.Errorf("container %s: %s = %q, want %q", c.Name, k, got[k], v)
				}
			}
			for k := range got {
				if strings.HasPrefix(k, "DB_") || strings.HasPrefix(k, "CACHE_") {
					t.Errorf("container %s: %s injected (headless / other namespace)", c.Name, k)
				}
			}
		}
		app := pod.Spec.Containers[0]
		if got := envMap(app)["WEB_SERVICE_PORT"]; got != "mine" {
			t.Errorf("the container's own WEB_SERVICE_PORT was overwritten: %q", got)
		}
		names := make([]string, len(app.Env))
		for i, e := range app.Env {
			names[i] = e.Name
		}
		if n := len(names); n < 2 || names[n-2] != "UPSTREAM" || names[n-1] != "WEB_SERVICE_PORT" {
			t.Errorf("the container's own entries are not last, in order: %v", names)
		}
		if c := slices.Index(names, "WEB_SERVICE_PORT"); c != len(names)-1 {
			t.Errorf("WEB_SERVICE_PORT appears twice: %v", names)
		}
	})

	t.Run("the annotation selects services across namespaces", func(t *testing.T) {
		p := create(testPod("selected", map[string]string{"svcdisc.io/services": "cache." + other}), metav1.CreateOptions{})
		if p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks {
			t.Errorf("enableServiceLinks = %v, want false", p.Spec.EnableServiceLinks)
		}
		got := envMap(p.Spec.Containers[1])
		if got["CACHE_SERVICE_HOST"] != cache.Spec.ClusterIP || got["CACHE_SERVICE_PORT_REDIS"] != "6379" {
			t.Errorf("cache variables: %v", got)
		}
		if _, ok := got["WEB_SERVICE_HOST"]; ok {
			t.Error("a service not selected was injected")
		}
		if got["KUBERNETES_SERVICE_HOST"] != master.Spec.ClusterIP {
			t.Error("the master service is missing")
		}
	})

	t.Run("opted out pods are left alone", func(t *testing.T) {
		p := create(testPod("opted-out", map[string]string{"svcdisc.io/inject": "false"}), metav1.CreateOptions{})
		if len(p.Spec.Containers[1].Env) != 0 || len(p.Spec.Containers[0].Env) != 2 {
			t.Errorf("env changed: %v / %v", p.Spec.Containers[0].Env, p.Spec.Containers[1].Env)
		}
	})

	t.Run("dry run is mutated and not stored", func(t *testing.T) {
		p := create(testPod("dry", nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if _, ok := envMap(p.Spec.Containers[1])["WEB_SERVICE_HOST"]; !ok {
			t.Error("dry-run pod not mutated")
		}
		if _, err := env.client.CoreV1().Pods(ns).Get(ctx, "dry", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("dry-run pod stored: %v", err)
		}
	})

	t.Run("new services reach new pods", func(t *testing.T) {
		api := mk(ns, "api", false, corev1.ServicePort{Port: 9090})
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ; i++ {
			p := create(testPod(fmt.Sprintf("after-api-%d", i), nil), metav1.CreateOptions{})
			if envMap(p.Spec.Containers[1])["API_SERVICE_HOST"] == api.Spec.ClusterIP {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the new service's variables never appeared")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("the API server keeps calling through a certificate rotation", func(t *testing.T) {
		w.rotate(t)
		for i := range 3 {
			p := create(testPod(fmt.Sprintf("rotated-%d", i), nil), metav1.CreateOptions{})
			if _, ok := envMap(p.Spec.Containers[1])["WEB_SERVICE_HOST"]; !ok {
				t.Fatalf("pod created after rotation not mutated")
			}
		}
	})

	t.Run("with the webhook stopped pods are still created, unmutated", func(t *testing.T) {
		w.stop()
		p := create(testPod("webhook-down", nil), metav1.CreateOptions{})
		if len(p.Spec.Containers[1].Env) != 0 {
			t.Errorf("mutated with the webhook down? %v", p.Spec.Containers[1].Env)
		}
	})
}

func waitReady(t testing.TB, w *testWebhook) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get(t, w.client, w.url("/readyz"))
		if code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook not ready: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkAdmissionThroughAPIServer measures admission end to end: a Pod
// of three containers created through the real API server in a namespace
// of 1,000 Services, without the webhook and with it (default limits, so
// 1,000 variables per container). It reports p50 and p99 besides the mean.
// Run: go test -run '^$' -bench AdmissionThroughAPIServer ./cmd/svcdisc
// with the test environment's variables set (see hack/README.md).
func BenchmarkAdmissionThroughAPIServer(b *testing.B) {
	env := needKube(b)
	ctx := context.Background()
	label := fmt.Sprintf("t%d", rand.Uint32())
	ns := env.webhookNamespace(b, "whlat", label)
	for i := range 1000 {
		_, err := env.client.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
	w := startTestWebhook(b, webhookOptions{kubeconfig: env.kubeconfig})
	waitReady(b, w)
	n := 0
	measure := func(b *testing.B, mutated bool) {
		var d []time.Duration
		for b.Loop() {
			n++
			p := testPod(fmt.Sprintf("p-%d", n), nil)
			p.Spec.InitContainers = nil
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "third", Image: "busybox"})
			start := time.Now()
			out, err := env.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
			if err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
			if got := len(out.Spec.Containers[1].Env) > 0; got != mutated {
				b.Fatalf("pod %s mutated=%v, want %v", p.Name, got, mutated)
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
	}
	b.Run("without-webhook", func(b *testing.B) { measure(b, false) })
	env.registerWebhook(b, w, label)
	time.Sleep(2 * time.Second) // let the API server see the configuration
	b.Run("with-webhook", func(b *testing.B) { measure(b, true) })
}
