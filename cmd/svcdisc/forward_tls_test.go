package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
)

// startDoT runs a DNS over TLS server on 127.0.0.1 with a certificate for
// serverName issued by a fresh CA, answering A queries with 192.0.2.43 and
// NXDOMAIN for names under nx.; it returns its address, the CA's PEM file
// and a count of the queries it saw.
func startDoT(t *testing.T, serverName string) (string, string, *atomic.Int32) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: serverName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{serverName}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	started := make(chan struct{})
	srv := &dns.Server{Listener: l, Net: "tcp-tls", NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(r)
			m.RecursionAvailable = true
			q := r.Question[0]
			switch {
			case q.Qtype == dns.TypeNS && q.Name == ".":
			default:
				calls.Add(1)
				if strings.HasSuffix(q.Name, ".nx.") {
					m.Rcode = dns.RcodeNameError
				} else if q.Qtype == dns.TypeA {
					rr, _ := dns.NewRR(q.Name + " 300 IN A 192.0.2.43")
					m.Answer = append(m.Answer, rr)
				}
			}
			w.WriteMsg(m)
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.ShutdownContext(ctx)
	})
	return l.Addr().String(), caFile, &calls
}

func TestForwardOverTLSEndToEnd(t *testing.T) {
	dot, caFile, calls := startDoT(t, "dns.example.net")
	plain := startUpstream(t)
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    forward . tls://%s {
        tls %s
        tls_servername dns.example.net
        next NXDOMAIN
    }
    forward . %s
}
`, dot, caFile, plain.addr))
	addr := r.in.dnsAddr()
	for _, proto := range []string{"udp", "tcp"} {
		m := query(t, proto, addr, "www.example.org.", dns.TypeA)
		if m.Rcode != dns.RcodeSuccess || firstA(m) != "192.0.2.43" || !m.RecursionAvailable {
			t.Fatalf("over %s: %v, want the DNS over TLS upstream's answer", proto, m)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the TLS upstream saw %d queries, want 2", n)
	}
	// next NXDOMAIN hands the query on to the next forward.
	m := query(t, "udp", addr, "gone.nx.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || firstA(m) != "192.0.2.1" || plain.calls.Load() != 1 {
		t.Fatalf("NXDOMAIN with next: %v (plain upstream asked %d times), want the next forward's answer", m, plain.calls.Load())
	}
}

func TestForwardOverTLSWithTheWrongServerNameFails(t *testing.T) {
	dot, caFile, calls := startDoT(t, "dns.example.net")
	r, _ := serveCorefile(t, fmt.Sprintf(`. {
    forward . tls://%s {
        tls %s
        tls_servername other.example.net
    }
}
`, dot, caFile))
	m := query(t, "udp", r.in.dnsAddr(), "www.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || calls.Load() != 0 {
		t.Fatalf("rcode %s, %d queries reached the upstream; want SERVFAIL and none", dns.RcodeToString[m.Rcode], calls.Load())
	}
}

func TestForwardTLSFilesAreCheckedAtStart(t *testing.T) {
	cfg, err := config.Parse("Corefile", strings.NewReader(". {\n    forward . tls://127.0.0.1 {\n        tls /nonexistent/ca.pem\n        tls_servername x.org\n    }\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = build(cfg, serveFlags{manifests: "../../examples", dnsAddr: "127.0.0.1:0"}, nil, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err == nil || !strings.Contains(err.Error(), "Corefile:3: tls: CA") {
		t.Fatalf("build error %v, want Corefile:3: tls: CA…", err)
	}
}
