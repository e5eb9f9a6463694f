package certs

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor bounds how long a test waits for a reload; reloads take about
// reloadDebounce, the slack is for loaded CI machines.
const waitFor = 10 * time.Second

const webhookName = "svcdisc-webhook.kube-system.svc"

// syncBuffer is a log destination safe for the Run goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger logs into the returned buffer and, on failure, the test log.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keypair log:\n%s", buf)
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// newTestKeypair writes b into dir and loads it.
func newTestKeypair(t *testing.T, dir string, b *Bundle, log *slog.Logger) *Keypair {
	t.Helper()
	if err := b.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	k, err := NewKeypair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile), log)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runKeypair runs k until the test ends, and checks Run then returns the
// context's error.
func runKeypair(t *testing.T, k *Keypair) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v after cancel, want context.Canceled", err)
		}
	})
}

// serveTLS accepts TLS connections on a loopback port with ServerConfig(k)
// until the test ends, and returns the address.
func serveTLS(t *testing.T, k *Keypair) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(waitFor))
				_ = c.(*tls.Conn).Handshake()
			})
		}
	})
	return ln.Addr().String()
}

// handshake connects to addr as a client trusting roots and asking for
// serverName, and returns the certificate the server presented.
func handshake(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: waitFor},
		Config:    &tls.Config{RootCAs: roots, ServerName: serverName},
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

func mustHandshake(t *testing.T, addr, serverName string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	cert, err := handshake(addr, serverName, roots)
	if err != nil {
		t.Fatalf("handshake with %s as %q: %v", addr, serverName, err)
	}
	return cert
}

func serial(t *testing.T, b *Bundle) *big.Int {
	t.Helper()
	return parseCert(t, b.Cert).SerialNumber
}

// waitReloads waits until k has reloaded n times.
func waitReloads(t *testing.T, k *Keypair, n uint64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for k.Reloads() < n {
		if time.Now().After(deadline) {
			t.Fatalf("Reloads() = %d after %s, want %d", k.Reloads(), waitFor, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := k.Reloads(); got != n {
		t.Fatalf("Reloads() = %d, want %d", got, n)
	}
}

// waitLog waits until the log holds want.
func waitLog(t *testing.T, log *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not say %q after %s", want, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reissue signs a new serving certificate with b's CA.
func reissue(t *testing.T, b *Bundle, o Options) *Bundle {
	t.Helper()
	caCert := parseCert(t, b.CACert)
	block, _ := pem.Decode(b.CAKey)
	if block == nil {
		t.Fatal("CA key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := issue(caCert, key.(crypto.Signer), o)
	if err != nil {
		t.Fatal(err)
	}
	return nb
}

func TestKeypairServesTLSHandshake(t *testing.T) {
	log, _ := testLogger(t)
	b := mustGenerate(t, Options{DNSNames: []string{webhookName}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	k := newTestKeypair(t, t.TempDir(), b, log)
	addr := serveTLS(t, k)
	for _, name := range []string{webhookName, "127.0.0.1"} {
		t.Run(name, func(t *testing.T) {
			got := mustHandshake(t, addr, name, caPool(t, b))
			if got.SerialNumber.Cmp(serial(t, b)) != 0 {
				t.Errorf("server presented serial %x, want %x", got.SerialNumber, serial(t, b))
			}
			if cur := k.Current(); cur.SerialNumber.Cmp(got.SerialNumber) != 0 {
				t.Errorf("Current() serial %x, want the served %x", cur.SerialNumber, got.SerialNumber)
			}
		})
	}
	if _, err := handshake(addr, webhookName, caPool(t, mustGenerate(t, testOptions()))); err == nil {
		t.Error("a client trusting another CA completed the handshake")
	}
}

func TestKeypairRejectsTLS11Client(t *testing.T) {
	b := mustGenerate(t, Options{DNSNames: []string{webhookName}})
	k := newTestKeypair(t, t.TempDir(), b, nil)
	addr := serveTLS(t, k)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", addr, &tls.Config{
		RootCAs: caPool(t, b), ServerName: webhookName,
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
	})
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 client completed the handshake")
	}
	if !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake failed with %q, want a protocol version alert", err)
	}
}

func TestNewKeypairFailsWithoutAPair(t *testing.T) {
	a := mustGenerate(t, Options{DNSNames: []string{webhookName}})
	other := mustGenerate(t, Options{DNSNames: []string{webhookName}})
	for _, tc := range []struct {
		name      string
		cert, key []byte // nil: no file
	}{
		{"no certificate file", nil, a.Key},
		{"no key file", a.Cert, nil},
		{"garbage certificate", []byte("not a certificate"), a.Key},
		{"empty key", a.Cert, []byte{}},
		{"key of another certificate", a.Cert, other.Key},
		{"CA in place of the certificate", a.CACert, a.Key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
			for path, data := range map[string][]byte{certFile: tc.cert, keyFile: tc.key} {
				if data == nil {
					continue
				}
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			k, err := NewKeypair(certFile, keyFile, nil)
			if err == nil {
				t.Fatalf("NewKeypair = %v, want an error", k)
			}
		})
	}
}

func TestKeypairReloadsRewrittenFiles(t *testing.T) {
	opts := Options{DNSNames: []string{webhookName}}
	for _, tc := range []struct {
		name string
		next func(t *testing.T, b *Bundle) *Bundle
	}{
		{"same CA", func(t *testing.T, b *Bundle) *Bundle { return reissue(t, b, opts) }},
		{"new CA", func(t *testing.T, _ *Bundle) *Bundle { return mustGenerate(t, opts) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := testLogger(t)
			dir := t.TempDir()
			b := mustGenerate(t, opts)
			k := newTestKeypair(t, dir, b, log)
			runKeypair(t, k)
			addr := serveTLS(t, k)

			nb := tc.next(t, b)
			roots := caPool(t, b, nb)
			if got := mustHandshake(t, addr, webhookName, roots); got.SerialNumber.Cmp(serial(t, b)) != 0 {
				t.Fatalf("before the rewrite: serial %x, want %x", got.SerialNumber, serial(t, b))
			}
			if err := nb.WriteFiles(dir); err != nil {
				t.Fatal(err)
			}
			waitReloads(t, k, 1)
			if got := mustHandshake(t, addr, webhookName, roots); got.SerialNumber.Cmp(serial(t, nb)) != 0 {
				t.Errorf("after the rewrite: serial %x, want the new %x", got.SerialNumber, serial(t, nb))
			}
			if got := k.Current().SerialNumber; got.Cmp(serial(t, nb)) != 0 {
				t.Errorf("Current() serial %x, want the new %x", got, serial(t, nb))
			}
		})
	}
}

// secretVolume lays dir out as the kubelet does a Secret volume: the files
// in a timestamped directory, "..data" a symlink to it, and each file a
// symlink through "..data".
type secretVolume struct {
	t   *testing.T
	dir string
	cur string // the timestamped directory ..data points to
}

func newSecretVolume(t *testing.T, b *Bundle) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.update("..2026_01_01_00_00_00.000000001", b)
	for _, name := range []string{CertFile, KeyFile} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// update writes b into a new timestamped directory, swaps ..data to it
// atomically (a ..data_tmp symlink renamed over ..data) and removes the
// old directory, as the kubelet's AtomicWriter does.
func (v *secretVolume) update(ts string, b *Bundle) {
	t := v.t
	t.Helper()
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{CertFile: b.Cert, KeyFile: b.Key} {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			t.Fatal(err)
		}
	}
	v.cur = ts
}

func TestKeypairFollowsKubernetesSecretSwap(t *testing.T) {
	log, _ := testLogger(t)
	opts := Options{DNSNames: []string{webhookName}}
	b := mustGenerate(t, opts)
	v := newSecretVolume(t, b)
	k, err := NewKeypair(filepath.Join(v.dir, CertFile), filepath.Join(v.dir, KeyFile), log)
	if err != nil {
		t.Fatal(err)
	}
	runKeypair(t, k)
	addr := serveTLS(t, k)

	nb := reissue(t, b, opts)
	v.update("..2026_02_01_00_00_00.000000002", nb)
	waitReloads(t, k, 1)
	if got := mustHandshake(t, addr, webhookName, caPool(t, b)); got.SerialNumber.Cmp(serial(t, nb)) != 0 {
		t.Errorf("after the ..data swap: serial %x, want the new %x", got.SerialNumber, serial(t, nb))
	}

	// And again: the watch survives the first swap.
	nb2 := mustGenerate(t, opts)
	v.update("..2026_03_01_00_00_00.000000003", nb2)
	waitReloads(t, k, 2)
	if got := mustHandshake(t, addr, webhookName, caPool(t, nb2)); got.SerialNumber.Cmp(serial(t, nb2)) != 0 {
		t.Errorf("after the second ..data swap: serial %x, want the new %x", got.SerialNumber, serial(t, nb2))
	}
}

func TestKeypairKeepsServingOldPairWhenCertificateIsGarbage(t *testing.T) {
	log, logs := testLogger(t)
	opts := Options{DNSNames: []string{webhookName}}
	dir := t.TempDir()
	b := mustGenerate(t, opts)
	k := newTestKeypair(t, dir, b, log)
	runKeypair(t, k)
	addr := serveTLS(t, k)
	certFile := filepath.Join(dir, CertFile)

	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ngarbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "keypair rejected")
	if !strings.Contains(logs.String(), certFile) {
		t.Errorf("the warning does not name %s:\n%s", certFile, logs)
	}
	if n := k.Reloads(); n != 0 {
		t.Errorf("Reloads() = %d after a garbage write, want 0", n)
	}
	if got := mustHandshake(t, addr, webhookName, caPool(t, b)); got.SerialNumber.Cmp(serial(t, b)) != 0 {
		t.Errorf("after the garbage write: serial %x, want the old %x", got.SerialNumber, serial(t, b))
	}

	nb := reissue(t, b, opts)
	if err := nb.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	waitReloads(t, k, 1)
	if got := mustHandshake(t, addr, webhookName, caPool(t, b)); got.SerialNumber.Cmp(serial(t, nb)) != 0 {
		t.Errorf("after the good write: serial %x, want the new %x", got.SerialNumber, serial(t, nb))
	}
}

func TestKeypairPollsWhenEventsAreMissed(t *testing.T) {
	log, _ := testLogger(t)
	opts := Options{DNSNames: []string{webhookName}}
	dir := t.TempDir()
	b := mustGenerate(t, opts)
	k := newTestKeypair(t, dir, b, log)
	// Events never settle in time: only the poll can see the change.
	k.debounce, k.poll = time.Hour, 20*time.Millisecond
	runKeypair(t, k)

	nb := reissue(t, b, opts)
	if err := nb.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	waitReloads(t, k, 1)
	if got := k.Current().SerialNumber; got.Cmp(serial(t, nb)) != 0 {
		t.Errorf("Current() serial %x, want the new %x", got, serial(t, nb))
	}
}

func TestKeypairDoesNotReloadWhenBrokenPairIsRestored(t *testing.T) {
	log, logs := testLogger(t)
	dir := t.TempDir()
	b := mustGenerate(t, Options{DNSNames: []string{webhookName}})
	k := newTestKeypair(t, dir, b, log)
	runKeypair(t, k)

	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "keypair rejected")
	if err := b.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	restored := pair{cert: b.Cert, key: b.Key}
	deadline := time.Now().Add(waitFor)
	for {
		k.mu.Lock()
		seen := k.seen.equal(restored)
		k.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restored pair was not read within %s", waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := k.Reloads(); n != 0 {
		t.Errorf("Reloads() = %d after restoring the served pair, want 0", n)
	}
}

func TestZeroKeypairServesNoCertificate(t *testing.T) {
	var k Keypair
	if c, err := k.GetCertificate(nil); c != nil || err == nil {
		t.Errorf("GetCertificate = %v, %v; want nil and an error", c, err)
	}
	if c := k.Current(); c != nil {
		t.Errorf("Current() = %v, want nil", c)
	}
}

func TestServerConfigRequiresTLS12(t *testing.T) {
	b := mustGenerate(t, Options{DNSNames: []string{webhookName}})
	k := newTestKeypair(t, t.TempDir(), b, nil)
	cfg := ServerConfig(k)
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: webhookName})
	if err != nil || c == nil {
		t.Fatalf("GetCertificate = %v, %v", c, err)
	}
}
