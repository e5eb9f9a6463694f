package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svcdisc/svcdisc/certs"
	"github.com/svcdisc/svcdisc/envgen"
)

// testWebhook is a webhook started in-process on 127.0.0.1 with a fresh CA.
type testWebhook struct {
	*webhookServer
	dir    string
	bundle *certs.Bundle
	client *http.Client
	stop   func()
}

func startTestWebhook(t testing.TB, o webhookOptions) *testWebhook {
	t.Helper()
	dir := t.TempDir()
	b, err := certs.Generate(certs.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	o.addr = "127.0.0.1:0"
	o.certFile, o.keyFile = filepath.Join(dir, certs.CertFile), filepath.Join(dir, certs.KeyFile)
	if o.limits == (envgen.Limits{}) {
		o.limits = envgen.DefaultLimits
	}
	if o.maxBody == 0 {
		o.maxBody = envgen.DefaultMaxBody
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := startWebhook(ctx, o, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.wait(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook shutdown: %v", err)
		}
	}
	t.Cleanup(stop)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b.CACert)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DisableKeepAlives: true, // every request a handshake: rotation shows at once
	}}
	return &testWebhook{webhookServer: w, dir: dir, bundle: b, client: client, stop: stop}
}

func (w *testWebhook) url(path string) string { return "https://" + w.addr() + path }

// servedSerial is the serial of the certificate a fresh handshake gets.
func (w *testWebhook) servedSerial(t *testing.T) string {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.bundle.CACert)
	conn, err := tls.Dial("tcp", w.addr(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// rotate signs a new serving certificate with the same CA and swaps it in
// the way a Secret volume does, then waits until handshakes see it.
func (w *testWebhook) rotate(t *testing.T) {
	t.Helper()
	before := w.servedSerial(t)
	nb, err := certs.Renew(w.bundle.CACert, w.bundle.CAKey, certs.Options{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := nb.WriteFiles(w.dir); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for w.servedSerial(t) == before {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate is not served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebhookServesOverTLS(t *testing.T) {
	w := startTestWebhook(t, webhookOptions{manifests: "../../examples"})
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, w.client, w.url(p)); code != http.StatusOK {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","operation":"CREATE",` +
		`"namespace":"shop","resource":{"version":"v1","resource":"pods"},` +
		`"object":{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"x"}]}}}}`
	post := func() (patch []byte) {
		resp, err := w.client.Post(w.url("/mutate"), "application/json", strings.NewReader(review))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Response struct {
				UID     string
				Allowed bool
				Patch   []byte
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, decode: %v", resp.StatusCode, err)
		}
		if out.Response.UID != "u-1" || !out.Response.Allowed {
			t.Fatalf("response %+v", out.Response)
		}
		return out.Response.Patch
	}
	if p := post(); !bytes.Contains(p, []byte(`{"name":"WEB_SERVICE_HOST","value":"10.96.10.10"}`)) {
		t.Errorf("patch lacks WEB_SERVICE_HOST: %s", p)
	}
	code, metrics := get(t, w.client, w.url("/metrics"))
	if code != http.StatusOK || !strings.Contains(metrics, `svcdisc_webhook_admissions_total{result="patched"} 1`) ||
		!strings.Contains(metrics, "svcdisc_webhook_admission_duration_seconds_count 1") {
		t.Errorf("metrics: %d\n%s", code, grepLines(metrics, "svcdisc_webhook"))
	}

	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", w.addr(), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
	t.Run("plain HTTP is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + w.addr() + "/mutate")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("plain HTTP got %d", resp.StatusCode)
			}
		}
	})
	t.Run("a rotated certificate is served without a restart", func(t *testing.T) {
		w.rotate(t)
		if p := post(); !bytes.Contains(p, []byte("WEB_SERVICE_HOST")) {
			t.Errorf("after rotation: %s", p)
		}
		_, metrics := get(t, w.client, w.url("/metrics"))
		if !strings.Contains(metrics, "svcdisc_webhook_certificate_reloads_total 1") {
			t.Errorf("reloads not counted:\n%s", grepLines(metrics, "certificate"))
		}
	})
}

func TestWebhookNotReadyUntilServicesSync(t *testing.T) {
	// A kubeconfig pointing at a closed port: the source never syncs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startTestWebhook(t, webhookOptions{kubeconfig: kc})
	if code, body := get(t, w.client, w.url("/readyz")); code != http.StatusServiceUnavailable || !strings.Contains(body, "services not synced") {
		t.Errorf("/readyz before sync: %d %s", code, body)
	}
	if code, _ := get(t, w.client, w.url("/healthz")); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
}

func TestWebhookCommandFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"certificate required", []string{"--manifests", "../../examples"}, `Required flags "tls-cert-file, tls-key-file" not set`},
		{"missing certificate files", []string{"--tls-cert-file", "/nonexistent/tls.crt", "--tls-key-file", "/nonexistent/tls.key", "--manifests", "../../examples"}, "nonexistent"},
		{"negative limit", []string{"--tls-cert-file", "a", "--tls-key-file", "b", "--max-vars", "-1"}, "--max-vars"},
		{"both sources", []string{"--tls-cert-file", "a", "--tls-key-file", "b", "--manifests", "x", "--kubeconfig", "y"}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(append([]string{"svcdisc", "webhook", "--addr", "127.0.0.1:0"}, tt.args...), &out, &errb); code != 1 {
				t.Fatalf("exit %d", code)
			}
			if !strings.Contains(errb.String(), tt.want) {
				t.Errorf("stderr %q does not say %q", errb.String(), tt.want)
			}
		})
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
