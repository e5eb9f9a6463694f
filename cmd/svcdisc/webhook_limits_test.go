package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// webhookHangGuard bounds each wait in these tests; it measures nothing:
// the webhook's timeouts here are a small fraction of it, and a test only
// runs into it when the webhook never cuts the client off.
const webhookHangGuard = 10 * time.Second

func TestWebhookCutsOffSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	w := startTestWebhook(t, webhookOptions{manifests: "../../examples", readHeaderTimeout: timeout, readTimeout: timeout})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.bundle.CACert)

	headers := "POST /mutate HTTP/1.1\r\nHost: svcdisc\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
	tests := []struct {
		name string
		// first is sent at once, then trickle a byte at a time, 30 ms
		// apart, for as long as the connection takes it.
		first, trickle string
	}{
		{"a client that sends nothing after the handshake", "", ""},
		{"a client trickling its headers", "", headers},
		{"a client trickling its body after the headers", headers, strings.Repeat("{", 100000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", w.addr(), &tls.Config{RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.first); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tt.trickle != "" {
				go func() {
					for i := range len(tt.trickle) {
						select {
						case <-stop:
							return
						case <-time.After(30 * time.Millisecond):
						}
						conn.SetWriteDeadline(time.Now().Add(webhookHangGuard))
						if _, err := io.WriteString(conn, tt.trickle[i:i+1]); err != nil {
							return // cut off
						}
					}
				}()
			}
			// Whatever the webhook answers (a 400 or 408, or nothing), it
			// must then close the connection.
			conn.SetReadDeadline(time.Now().Add(webhookHangGuard))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatalf("still connected after %s", webhookHangGuard)
			case err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Fatalf("read: %v, want the webhook to close the connection", err)
			}
		})
	}
	// The webhook still serves a well-behaved client.
	if code, body := get(t, w.client, w.url("/healthz")); code != 200 {
		t.Fatalf("/healthz afterwards: %d %s", code, body)
	}
}
