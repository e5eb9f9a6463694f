package forward

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testCA is a certificate authority made for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "svcdisc test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a server certificate for the DNS names and IP addresses.
func (ca *testCA) issue(t testing.TB, names []string, ips []net.IP) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "dns server"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsUpstream is an in-process DNS over TLS server on 127.0.0.1.
type tlsUpstream struct {
	Addr    string
	queries atomic.Int64 // queries answered, probes excepted
	probes  atomic.Int64
	conns   atomic.Int64 // TLS connections accepted
	sni     atomic.Value // the last server name a client sent
}

// startTLSUpstream serves DNS over TLS with cert, answering A queries with
// ip, until the test ends.
func startTLSUpstream(t testing.TB, cert tls.Certificate, ip string) *tlsUpstream {
	t.Helper()
	u := &tlsUpstream{}
	u.sni.Store("")
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			u.conns.Add(1)
			u.sni.Store(h.ServerName)
			return nil, nil
		},
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	u.Addr = l.Addr().String()
	started := make(chan struct{})
	srv := &dns.Server{Listener: l, Net: "tcp-tls", NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
			if isProbe(r) {
				u.probes.Add(1)
			} else {
				u.queries.Add(1)
			}
			w.WriteMsg(replyA(r, ip))
		}),
		ReadTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 5 * time.Second }}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.ShutdownContext(ctx)
	})
	return u
}

func TestDNSOverTLS(t *testing.T) {
	ca := newTestCA(t)
	byName := startTLSUpstream(t, ca.issue(t, []string{"dns.example.net"}, nil), "192.0.2.53")
	byIP := startTLSUpstream(t, ca.issue(t, nil, []net.IP{net.ParseIP("127.0.0.1")}), "192.0.2.54")
	otherCA := newTestCA(t)

	tests := []struct {
		name       string
		upstream   string
		serverName string
		roots      *x509.CertPool
		want       string // the answer's address, "" for a failure
		wantSNI    string
	}{
		{"the certificate names tls_servername", "tls://" + byName.Addr, "dns.example.net", ca.pool, "192.0.2.53", "dns.example.net"},
		{"the server name written with the upstream", "tls://" + strings.Replace(byName.Addr, ":", "%dns.example.net:", 1), "", ca.pool, "192.0.2.53", "dns.example.net"},
		{"another name than the certificate's fails", "tls://" + byName.Addr, "other.example.net", ca.pool, "", "other.example.net"},
		{"without a server name the IP address is checked", "tls://" + byIP.Addr, "", ca.pool, "192.0.2.54", ""},
		{"without a server name a certificate without the IP fails", "tls://" + byName.Addr, "", ca.pool, "", ""},
		{"a certificate from an unknown CA fails", "tls://" + byName.Addr, "dns.example.net", otherCA.pool, "", "dns.example.net"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newForwarder(t, Options{
				Upstreams: []string{tt.upstream}, TLSServerName: tt.serverName,
				TLS: &tls.Config{RootCAs: tt.roots}, Timeout: time.Second,
			})
			m, err := f.Exchange(context.Background(), query("tls.example.", dns.TypeA))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("exchange succeeded: %v", m)
				}
				if !strings.Contains(err.Error(), "certificate") {
					t.Errorf("err = %v, want a certificate error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := firstA(m); got != tt.want || m.Id != 4242 || m.Rcode != dns.RcodeSuccess {
				t.Errorf("answer %s, id %d, rcode %d; want %s", got, m.Id, m.Rcode, tt.want)
			}
			up := byName
			if strings.Contains(tt.upstream, byIP.Addr) {
				up = byIP
			}
			if sni := up.sni.Load().(string); sni != tt.wantSNI {
				t.Errorf("SNI %q, want %q", sni, tt.wantSNI)
			}
		})
	}
}

func TestDNSOverTLSReusesConnections(t *testing.T) {
	ca := newTestCA(t)
	up := startTLSUpstream(t, ca.issue(t, []string{"dns.example.net"}, nil), "192.0.2.53")
	f := newForwarder(t, Options{
		Upstreams: []string{"tls://" + up.Addr}, TLSServerName: "dns.example.net",
		TLS: &tls.Config{RootCAs: ca.pool},
	})
	for i := range 5 {
		m, err := f.Exchange(context.Background(), query(string(rune('a'+i))+".reuse.example.", dns.TypeA))
		if err != nil || firstA(m) != "192.0.2.53" {
			t.Fatalf("query %d: %v %v", i, m, err)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d TLS connections for 5 queries in a row, want 1", n)
	}
	if up.queries.Load() != 5 {
		t.Errorf("upstream saw %d queries, want 5", up.queries.Load())
	}
}

func TestExpireZeroDialsEachQuery(t *testing.T) {
	ca := newTestCA(t)
	up := startTLSUpstream(t, ca.issue(t, []string{"dns.example.net"}, nil), "192.0.2.53")
	f := newForwarder(t, Options{
		Upstreams: []string{"tls://" + up.Addr}, TLSServerName: "dns.example.net",
		TLS: &tls.Config{RootCAs: ca.pool}, Expire: -1,
	})
	for i := range 3 {
		if _, err := f.Exchange(context.Background(), query(string(rune('a'+i))+".expire.example.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
	}
	if n := up.conns.Load(); n != 3 {
		t.Errorf("%d TLS connections for 3 queries without reuse, want 3", n)
	}
}

func TestKeptConnectionClosedByUpstreamIsRedialled(t *testing.T) {
	ca := newTestCA(t)
	up := startTLSUpstream(t, ca.issue(t, []string{"dns.example.net"}, nil), "192.0.2.53")
	f := newForwarder(t, Options{
		Upstreams: []string{"tls://" + up.Addr}, TLSServerName: "dns.example.net",
		TLS: &tls.Config{RootCAs: ca.pool}, MaxFails: 2,
	})
	if _, err := f.Exchange(context.Background(), query("one.example.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	// Close the kept connection under the pool's feet, as an upstream
	// closing it for idleness would.
	c := f.ups[0].idle.get(1, f.limits)
	if c == nil {
		t.Fatal("no kept connection")
	}
	c.Conn.(*tls.Conn).NetConn().Close()
	f.ups[0].idle.put(1, c, f.limits)
	m, err := f.Exchange(context.Background(), query("two.example.", dns.TypeA))
	if err != nil || firstA(m) != "192.0.2.53" {
		t.Fatalf("after the upstream closed the kept connection: %v %v", m, err)
	}
	if st := f.Upstreams()[0]; st.Failures != 0 {
		t.Errorf("a closed kept connection counted as a failure: %+v", st)
	}
}

func TestHealthProbesOfTLSUpstreamGoOverTLS(t *testing.T) {
	ca := newTestCA(t)
	up := startTLSUpstream(t, ca.issue(t, []string{"dns.example.net"}, nil), "192.0.2.53")
	f := newForwarder(t, Options{
		Upstreams: []string{"tls://" + up.Addr}, TLSServerName: "dns.example.net",
		TLS: &tls.Config{RootCAs: ca.pool}, MaxFails: 2, HealthCheck: 10 * time.Millisecond,
	})
	f.kick(f.ups[0])
	waitFor(t, 5*time.Second, "a health probe over TLS", func() bool { return up.probes.Load() > 0 })
}

func TestTLSUpstreamNames(t *testing.T) {
	tests := []struct {
		in, addr, serverName string
	}{
		{"tls://9.9.9.9", "9.9.9.9:853", "9.9.9.9"},
		{"tls://9.9.9.9:10853", "9.9.9.9:10853", "9.9.9.9"},
		{"TLS://9.9.9.9%dns.quad9.net", "9.9.9.9:853", "dns.quad9.net"},
		{"tls://9.9.9.9%dns.quad9.net:10853", "9.9.9.9:10853", "dns.quad9.net"},
		{"tls://[2620:fe::fe%dns.quad9.net]:10853", "[2620:fe::fe]:10853", "dns.quad9.net"},
		{"tls://[2620:fe::fe%dns.quad9.net]", "[2620:fe::fe]:853", "dns.quad9.net"},
		{"tls://[2620:fe::fe]", "[2620:fe::fe]:853", "2620:fe::fe"},
	}
	for _, tt := range tests {
		f, err := New(Options{Upstreams: []string{tt.in}})
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		u := f.ups[0]
		if u.addr != tt.addr || u.tls == nil || u.tls.ServerName != tt.serverName {
			t.Errorf("%s: addr %s, server name %q; want %s, %q", tt.in, u.addr, u.tls.ServerName, tt.addr, tt.serverName)
		}
	}
}
