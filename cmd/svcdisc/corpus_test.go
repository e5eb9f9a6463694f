package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svcdisc/svcdisc/config"
)

// refusedLikeCoreDNS are the corpus files CoreDNS itself refuses (and one
// with an impossible zone name it lets by): svcdisc must refuse them, with
// the file and line of the mistake.
var refusedLikeCoreDNS = map[string]string{
	// kubespray's documented example renders a DNS-over-HTTPS block
	// without tls, and cache 0 in it: CoreDNS refuses both; svcdisc serves
	// plain DNS only and stops at the https:// key.
	"kubespray-docs-example.Corefile": `unsupported scheme "https://"`,
	// The reporter's broken rewrite was the subject of the issue.
	"issue-1708-rewrite-continue.Corefile": "rewrite",
	// The reporter redacted the upstreams to x.x.x.x y.y.y.y.
	"issue-4427-ad-stub-domain.Corefile": `"x.x.x.x"`,
	// Talos's golden file for a cluster without a domain: kubernetes with
	// reverse zones only ("non-reverse zone name must be used" in CoreDNS).
	"talos-no-cluster-domain.Corefile": "at least one zone must be a forward (non-reverse) zone",
	// Not refused by CoreDNS, which takes ".svc" for a zone no query
	// matches; svcdisc refuses a zone name that cannot be one.
	"gitops-firzen-template.Corefile": `".svc" is not a valid zone name`,
}

// corpusRoot makes the files the corpus Corefiles name (see
// testdata/corefiles/STUBS.md) under a temporary root, and returns the root
// and the path rewrites that point the Corefiles there. With custom, the
// import globs match a stub each; without, they match nothing, as in most
// clusters.
func corpusRoot(t *testing.T, custom bool) (string, *strings.Replacer) {
	t.Helper()
	root := t.TempDir()
	write := func(path, data string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/resolv.conf", "nameserver 192.0.2.53\n")
	write("etc/coredns/NodeHosts", "192.0.2.10 node-1\n")
	write("etc/coredns/hosts", "192.168.0.100 api.example.com\n192.168.0.200 ingress.example.com\n")
	write("rootfs/etc/hosts", "127.0.0.1 localhost\n192.0.2.11 node-2.k8s.local\n")
	write("etc/pki/dns.bar.com-ca-cacerts-2/ca-bundle.crt", testCAPEM(t))
	if err := os.MkdirAll(filepath.Join(root, "etc/coredns/custom"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "aks/custom"), 0o755); err != nil {
		t.Fatal(err)
	}
	if custom {
		for _, dir := range []string{"etc/coredns/custom", "aks/custom"} {
			write(dir+"/test.override", "log\n")
			write(dir+"/test.server", "example.test:53 {\n    errors\n    forward . 192.0.2.54\n}\n")
		}
	}
	return root, strings.NewReplacer(
		"/etc/resolv.conf", filepath.Join(root, "etc/resolv.conf"),
		"/etc/coredns/", filepath.Join(root, "etc/coredns")+"/",
		"/rootfs/etc/hosts", filepath.Join(root, "rootfs/etc/hosts"),
		"/etc/pki/", filepath.Join(root, "etc/pki")+"/",
	)
}

func testCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "corpus test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestEveryCorpusCorefileLoads loads each real Corefile of
// testdata/corefiles the way serve does (parse, then build every server
// block's chain and parts), serving its kubernetes zones from an empty
// manifests directory. Each must load, bar the few CoreDNS refuses too, and
// nothing may panic.
func TestEveryCorpusCorefileLoads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "corefiles", "*.Corefile"))
	if err != nil || len(files) < 40 {
		t.Fatalf("corpus: %d files (%v), want at least 40", len(files), err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	loaded := 0
	for _, custom := range []bool{false, true} {
		root, paths := corpusRoot(t, custom)
		manifests := t.TempDir()
		for _, file := range files {
			base := filepath.Base(file)
			t.Run(fmt.Sprintf("%s custom=%v", base, custom), func(t *testing.T) {
				data, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				// Relative imports (AKS's custom/*.override) are read next
				// to the Corefile.
				dir := filepath.Join(root, "aks")
				path := filepath.Join(dir, base)
				if err := os.WriteFile(path, []byte(paths.Replace(string(data))), 0o644); err != nil {
					t.Fatal(err)
				}
				err = func() (err error) {
					defer func() {
						if r := recover(); r != nil {
							err = fmt.Errorf("panic: %v", r)
						}
					}()
					cfg, err := config.Load(path)
					if err != nil {
						return err
					}
					_, err = build(cfg, serveFlags{manifests: manifests, dnsAddr: "127.0.0.1:0"}, nil, log)
					return err
				}()
				if want, refused := refusedLikeCoreDNS[base]; refused {
					if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), base+":") {
						t.Errorf("loaded with error %v; want it refused like CoreDNS, naming %s:LINE and %q", err, base, want)
					}
					return
				}
				if err != nil {
					t.Errorf("does not load: %v", err)
					return
				}
				loaded++
			})
		}
	}
	t.Logf("%d of %d corpus Corefiles load unchanged; %d are refused as CoreDNS refuses them", loaded/2, len(files), len(refusedLikeCoreDNS))
}
