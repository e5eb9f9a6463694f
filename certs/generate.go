package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The names of the files Bundle.WriteFiles writes: those of a Kubernetes
// TLS Secret (tls.crt, tls.key) and of the CA beside them.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
)

// DefaultValidity is how long certificates are valid when Options.Validity
// is zero.
const DefaultValidity = 365 * 24 * time.Hour

// clockSkew backdates NotBefore, so a peer whose clock is a little behind
// accepts a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// Options say what to issue.
type Options struct {
	DNSNames []string         // DNS SANs; at least one DNS name or IP is required
	IPs      []net.IP         // IP SANs (e.g. 127.0.0.1 for tests)
	Validity time.Duration    // of the serving and CA certificates; DefaultValidity when 0
	Now      func() time.Time // the clock; nil means time.Now

	caNotAfter time.Time // set by Renew: nothing outlives its CA
}

// Bundle is PEM-encoded material: a CA certificate and key, and a serving
// certificate and key signed by that CA. Keys are PKCS #8.
type Bundle struct {
	CACert, CAKey, Cert, Key []byte
}

// Generate issues a new self-signed CA and a serving certificate signed by
// it for o's names. The serving certificate's CommonName is the first DNS
// name, or the first IP when there are none. The CA is valid exactly as
// long as the serving certificate: it signs nothing else.
func Generate(o Options) (*Bundle, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	caCert, caKey, err := newCA(o)
	if err != nil {
		return nil, err
	}
	return issue(caCert, caKey, o)
}

func (o *Options) check() error {
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return errors.New("certs: at least one DNS name or IP is required")
	}
	for _, n := range o.DNSNames {
		if n == "" {
			return errors.New("certs: empty DNS name")
		}
	}
	for _, ip := range o.IPs {
		if ip.To16() == nil {
			return fmt.Errorf("certs: invalid IP %q", ip.String())
		}
	}
	if o.Validity < 0 {
		return fmt.Errorf("certs: negative validity %s", o.Validity)
	}
	return nil
}

// window returns the NotBefore and NotAfter of certificates issued with o.
func (o *Options) window() (notBefore, notAfter time.Time) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	validity := o.Validity
	if validity == 0 {
		validity = DefaultValidity
	}
	t := now()
	end := t.Add(validity)
	if !o.caNotAfter.IsZero() && end.After(o.caNotAfter) {
		end = o.caNotAfter
	}
	return t.Add(-clockSkew), end
}

// subject is the serving certificate's CommonName.
func (o *Options) subject() string {
	if len(o.DNSNames) > 0 {
		return o.DNSNames[0]
	}
	return o.IPs[0].String()
}

// newCA returns a self-signed CA certificate that may sign leaf
// certificates only (MaxPathLen 0), and its key.
func newCA(o Options) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notBefore, notAfter := o.window()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "svcdisc CA for " + o.subject()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: parsing the CA certificate: %w", err)
	}
	return cert, key, nil
}

// issue signs a serving certificate for o's names with the CA and returns
// the whole bundle.
func issue(caCert *x509.Certificate, caKey crypto.Signer, o Options) (*Bundle, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generating the serving key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notBefore, notAfter := o.window()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.subject()},
		DNSNames:              o.DNSNames,
		IPAddresses:           o.IPs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return nil, fmt.Errorf("certs: signing the serving certificate: %w", err)
	}
	caKeyPEM, err := encodeKey(caKey)
	if err != nil {
		return nil, fmt.Errorf("certs: encoding the CA key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: encoding the serving key: %w", err)
	}
	return &Bundle{
		CACert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}),
		CAKey:  caKeyPEM,
		Cert:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:    keyPEM,
	}, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("certs: generating a serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteFiles writes ca.crt, ca.key, tls.crt and tls.key into dir, creating
// it (0o755) if it is missing. Keys are written 0o600, certificates 0o644.
// Each file is replaced atomically: written to a temporary file in dir,
// then renamed over the old one, so a reader sees the old file or the new
// one, never a part. The serving key is written before its certificate.
func (b *Bundle) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certs: creating %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		perm os.FileMode
	}{
		{CACertFile, b.CACert, 0o644},
		{CAKeyFile, b.CAKey, 0o600},
		{KeyFile, b.Key, 0o600},
		{CertFile, b.Cert, 0o644},
	} {
		if err := writeAtomic(filepath.Join(dir, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic replaces path with data through a temporary file in the same
// directory and a rename.
func writeAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: writing %s: %w", path, err)
	}
	return nil
}

// Renew issues a new serving certificate for o's names from an existing CA
// (PEM certificate and PKCS #8, SEC 1 or PKCS #1 key), so that a caBundle
// already handed out stays valid across the rotation. The certificate ends
// no later than the CA does.
func Renew(caCertPEM, caKeyPEM []byte, o Options) (*Bundle, error) {
	block, _ := pem.Decode(caCertPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("certs: CA certificate: no PEM CERTIFICATE block")
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: CA certificate: %w", err)
	}
	if !caCert.IsCA {
		return nil, errors.New("certs: CA certificate is not a CA")
	}
	kb, _ := pem.Decode(caKeyPEM)
	if kb == nil {
		return nil, errors.New("certs: CA key: no PEM block")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				return nil, errors.New("certs: CA key: not a PKCS #8, SEC 1 or PKCS #1 private key")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("certs: CA key cannot sign")
	}
	if err := checkKeyMatches(caCert, signer); err != nil {
		return nil, err
	}
	o.caNotAfter = caCert.NotAfter
	return issue(caCert, signer, o)
}

// checkKeyMatches makes sure the key is the CA certificate's: a mismatch
// would sign certificates nobody can verify.
func checkKeyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("certs: CA key does not match the CA certificate")
	}
	return nil
}
