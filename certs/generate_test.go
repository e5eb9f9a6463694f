package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of generated certificates, so checks of their
// validity window do not depend on the wall clock.
var testNow = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{
		DNSNames: []string{"svcdisc-webhook.kube-system.svc", "svcdisc-webhook.kube-system.svc.cluster.local"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1")},
		Now:      func() time.Time { return testNow },
	}
}

func mustGenerate(t *testing.T, o Options) *Bundle {
	t.Helper()
	b, err := Generate(o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return b
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", data)
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("trailing data after the certificate: %q", rest)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caPool(t *testing.T, bundles ...*Bundle) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	for _, b := range bundles {
		if !pool.AppendCertsFromPEM(b.CACert) {
			t.Fatalf("CA certificate does not parse: %q", b.CACert)
		}
	}
	return pool
}

func TestServingCertVerifiesAgainstCA(t *testing.T) {
	b := mustGenerate(t, testOptions())
	cert := parseCert(t, b.Cert)
	for _, tc := range []struct {
		name   string
		server string // DNS name or IP the client asks for
		ok     bool
	}{
		{"first DNS name", "svcdisc-webhook.kube-system.svc", true},
		{"second DNS name", "svcdisc-webhook.kube-system.svc.cluster.local", true},
		{"IP", "127.0.0.1", true},
		{"other DNS name", "other.kube-system.svc", false},
		{"other IP", "127.0.0.2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cert.Verify(x509.VerifyOptions{
				DNSName:     tc.server,
				Roots:       caPool(t, b),
				CurrentTime: testNow,
				KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if tc.ok && err != nil {
				t.Errorf("Verify(%s) = %v, want it to verify", tc.server, err)
			}
			if !tc.ok && err == nil {
				t.Errorf("Verify(%s) verified, want an error", tc.server)
			}
		})
	}
}

func TestServingCertDoesNotVerifyAgainstAnotherCA(t *testing.T) {
	b, other := mustGenerate(t, testOptions()), mustGenerate(t, testOptions())
	_, err := parseCert(t, b.Cert).Verify(x509.VerifyOptions{
		DNSName: "svcdisc-webhook.kube-system.svc", Roots: caPool(t, other), CurrentTime: testNow,
	})
	if err == nil {
		t.Fatal("the serving certificate verified against another bundle's CA")
	}
}

func TestGeneratedCertificatesHaveTheirUsages(t *testing.T) {
	b := mustGenerate(t, testOptions())
	ca, cert := parseCert(t, b.CACert), parseCert(t, b.Cert)

	if !ca.IsCA || !ca.BasicConstraintsValid {
		t.Errorf("CA: IsCA=%v BasicConstraintsValid=%v, want both", ca.IsCA, ca.BasicConstraintsValid)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want {
		t.Errorf("CA KeyUsage = %v, want %v", ca.KeyUsage, want)
	}
	if ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA MaxPathLen = %d (zero %v), want 0", ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	if cert.IsCA {
		t.Error("serving certificate is a CA")
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("serving KeyUsage = %v, want DigitalSignature", cert.KeyUsage)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("serving ExtKeyUsage = %v, want [ServerAuth]", cert.ExtKeyUsage)
	}
	if cert.Subject.CommonName != "svcdisc-webhook.kube-system.svc" {
		t.Errorf("serving CommonName = %q, want the first DNS name", cert.Subject.CommonName)
	}

	for name, c := range map[string]*x509.Certificate{"CA": ca, "serving": cert} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s key is %T, want ECDSA P-256", name, c.PublicKey)
		}
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
			t.Errorf("%s serial %x is not a positive 128-bit number", name, c.SerialNumber)
		}
		if want := testNow.Add(-5 * time.Minute); !c.NotBefore.Equal(want) {
			t.Errorf("%s NotBefore = %v, want %v", name, c.NotBefore, want)
		}
		if want := testNow.Add(365 * 24 * time.Hour); !c.NotAfter.Equal(want) {
			t.Errorf("%s NotAfter = %v, want the default of 365 days, %v", name, c.NotAfter, want)
		}
	}
	if ca.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Error("the CA and the serving certificate share a serial")
	}
	if _, err := tls.X509KeyPair(b.Cert, b.Key); err != nil {
		t.Errorf("serving certificate and key: %v", err)
	}
	if _, err := tls.X509KeyPair(b.CACert, b.CAKey); err != nil {
		t.Errorf("CA certificate and key: %v", err)
	}
}

func TestGenerateNamesCertificates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		wantCN   string
		validity time.Duration
	}{
		{
			name:   "IP only is named by the IP",
			opts:   Options{IPs: []net.IP{net.ParseIP("10.0.0.1")}},
			wantCN: "10.0.0.1", validity: DefaultValidity,
		},
		{
			name:   "given validity",
			opts:   Options{DNSNames: []string{"a.svc"}, Validity: 2 * time.Hour},
			wantCN: "a.svc", validity: 2 * time.Hour,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = func() time.Time { return testNow }
			b := mustGenerate(t, tc.opts)
			ca, cert := parseCert(t, b.CACert), parseCert(t, b.Cert)
			if cert.Subject.CommonName != tc.wantCN {
				t.Errorf("CommonName = %q, want %q", cert.Subject.CommonName, tc.wantCN)
			}
			if got := cert.NotAfter.Sub(testNow); got != tc.validity {
				t.Errorf("serving certificate valid for %s, want %s", got, tc.validity)
			}
			if ca.NotAfter.Before(cert.NotAfter) {
				t.Errorf("CA expires %v, before the serving certificate %v", ca.NotAfter, cert.NotAfter)
			}
		})
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no names", Options{}, "at least one DNS name or IP"},
		{"empty DNS name", Options{DNSNames: []string{""}}, "empty DNS name"},
		{"nil IP", Options{IPs: []net.IP{nil}}, "invalid IP"},
		{"negative validity", Options{DNSNames: []string{"a.svc"}, Validity: -time.Hour}, "negative validity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Generate(tc.opts)
			if err == nil {
				t.Fatalf("Generate(%+v) = %v, want an error", tc.opts, b)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Generate(%+v) error %q, want it to say %q", tc.opts, err, tc.want)
			}
		})
	}
}

func TestWriteFilesWritesEachFileWithItsMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	b := mustGenerate(t, testOptions())
	if err := b.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	// Writing again replaces the files and leaves no temporary ones.
	b = mustGenerate(t, testOptions())
	if err := b.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, b.CACert, 0o644},
		{CAKeyFile, b.CAKey, 0o600},
		{CertFile, b.Cert, 0o644},
		{KeyFile, b.Key, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.mode {
				t.Errorf("%s mode %v, want %v", tc.name, fi.Mode(), tc.mode)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != string(tc.data) {
				t.Errorf("%s holds %q, want the bundle's %q", tc.name, data, tc.data)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{CACertFile, CAKeyFile, CertFile, KeyFile}; !slices.Equal(names, want) {
		t.Errorf("%s holds %v, want %v", dir, names, want)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)); err != nil {
		t.Errorf("written serving pair does not load: %v", err)
	}
}

func TestWriteFilesFailsWhenDirIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mustGenerate(t, testOptions()).WriteFiles(file); err == nil {
		t.Fatalf("WriteFiles(%s) succeeded on a regular file", file)
	}
}

func TestRenewKeepsTheCA(t *testing.T) {
	orig := mustGenerate(t, testOptions())
	o := testOptions()
	o.Validity = 100 * 365 * 24 * time.Hour // longer than the CA: clamped
	renewed, err := Renew(orig.CACert, orig.CAKey, o)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(renewed.CACert, orig.CACert) {
		t.Error("CA certificate changed")
	}
	ca, leaf := parseCert(t, orig.CACert), parseCert(t, renewed.Cert)
	if leaf.SerialNumber.Cmp(parseCert(t, orig.Cert).SerialNumber) == 0 {
		t.Error("same serial as before")
	}
	if leaf.NotAfter.After(ca.NotAfter) {
		t.Errorf("certificate ends %v, after its CA (%v)", leaf.NotAfter, ca.NotAfter)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool(t, orig), DNSName: o.DNSNames[0]}); err != nil {
		t.Errorf("renewed certificate does not verify against the original CA: %v", err)
	}
}

func TestRenewRejectsBadCA(t *testing.T) {
	a, b := mustGenerate(t, testOptions()), mustGenerate(t, testOptions())
	tests := []struct {
		name          string
		caCert, caKey []byte
		want          string
	}{
		{"key of another CA", a.CACert, b.CAKey, "does not match"},
		{"a serving certificate is not a CA", a.Cert, a.Key, "not a CA"},
		{"garbage certificate", []byte("nope"), a.CAKey, "no PEM CERTIFICATE"},
		{"garbage key", a.CACert, []byte("nope"), "no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Renew(tt.caCert, tt.caKey, testOptions())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
}
