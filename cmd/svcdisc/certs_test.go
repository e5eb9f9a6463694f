package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/svcdisc/svcdisc/certs"
)

func runCerts(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	app := &cli.App{
		Name:           "svcdisc",
		Commands:       []*cli.Command{certsCommand()},
		Writer:         &out,
		ErrWriter:      &errb,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err = app.Run(append([]string{"svcdisc", "certs"}, args...))
	return out.String(), errb.String(), err
}

func TestCertsCommandPrintsCABundleThatVerifiesServingCert(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	stdout, stderr, err := runCerts("--dns-name", "svcdisc.kube-system.svc", "--dns-name", "svcdisc.kube-system.svc.cluster.local",
		"--ip", "127.0.0.1", "--out-dir", dir, "--validity", "1h")
	if err != nil {
		t.Fatalf("svcdisc certs: %v\nstderr:\n%s", err, stderr)
	}
	if !strings.HasSuffix(stdout, "\n") || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout %q, want one line of base64", stdout)
	}
	caPEM, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(stdout, "\n"))
	if err != nil {
		t.Fatalf("stdout is not base64: %v", err)
	}
	written, err := os.ReadFile(filepath.Join(dir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caPEM, written) {
		t.Errorf("stdout decodes to %q, want the written ca.crt %q", caPEM, written)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("stdout does not decode to a PEM certificate: %q", caPEM)
	}

	tlsPEM, err := os.ReadFile(filepath.Join(dir, certs.CertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(tlsPEM)
	if block == nil {
		t.Fatalf("%s is not PEM", certs.CertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"svcdisc.kube-system.svc", "svcdisc.kube-system.svc.cluster.local", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{
			DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("tls.crt does not verify for %s against the printed CA: %v", name, err)
		}
	}
	if d := cert.NotAfter.Sub(cert.NotBefore); d > 2*time.Hour {
		t.Errorf("tls.crt valid for %s, want about --validity 1h", d)
	}

	for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.CertFile, certs.KeyFile} {
		if !strings.Contains(stderr, filepath.Join(dir, name)) {
			t.Errorf("stderr does not say %s was written:\n%s", name, stderr)
		}
	}
}

func TestCertsCommandRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no names", []string{"--out-dir", "DIR"}, "--dns-name or --ip is required"},
		{"bad ip", []string{"--ip", "300.1.2.3", "--out-dir", "DIR"}, `"300.1.2.3"`},
		{"no out dir", []string{"--dns-name", "a.svc"}, "--out-dir is required"},
		{"negative validity", []string{"--dns-name", "a.svc", "--out-dir", "DIR", "--validity", "-1h"}, "--validity"},
		{"argument", []string{"--dns-name", "a.svc", "--out-dir", "DIR", "extra"}, `unexpected argument "extra"`},
		{"unknown flag", []string{"--dns", "a.svc"}, "dns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "DIR", dir)
			}
			stdout, _, err := runCerts(args...)
			if err == nil {
				t.Fatalf("svcdisc certs %v succeeded, want an error", args)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("svcdisc certs %v: error %q, want it to say %s", args, err, tc.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q after an error, want nothing", stdout)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s was created after an error", dir)
			}
		})
	}
}

func TestCertsCommandReuseCARotatesServingCertOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	first, stderr, err := runCerts("--dns-name", "svcdisc.kube-system.svc", "--out-dir", dir)
	if err != nil {
		t.Fatalf("svcdisc certs: %v\n%s", err, stderr)
	}
	oldCert, _ := os.ReadFile(filepath.Join(dir, certs.CertFile))
	second, stderr, err := runCerts("--dns-name", "svcdisc.kube-system.svc", "--out-dir", dir, "--reuse-ca")
	if err != nil {
		t.Fatalf("svcdisc certs --reuse-ca: %v\n%s", err, stderr)
	}
	if first != second {
		t.Errorf("caBundle changed on rotation")
	}
	newCert, _ := os.ReadFile(filepath.Join(dir, certs.CertFile))
	if bytes.Equal(oldCert, newCert) {
		t.Fatal("serving certificate not replaced")
	}
	caPEM, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(first))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	block, _ := pem.Decode(newCert)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "svcdisc.kube-system.svc"}); err != nil {
		t.Errorf("rotated certificate does not verify against the original CA: %v", err)
	}

	_, _, err = runCerts("--dns-name", "x", "--out-dir", t.TempDir(), "--reuse-ca")
	if err == nil || !strings.Contains(err.Error(), "--reuse-ca") {
		t.Errorf("--reuse-ca without a CA: err %v", err)
	}
}
