package forward

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSConfig builds the client TLS configuration of the forward directive's
// tls option from its files, as CoreDNS reads them: none (no client
// certificate, the system's roots), CA (the roots in that PEM file), CERT
// KEY (a client certificate, the system's roots) or CERT KEY CA. TLS 1.2 is
// the least version accepted.
func TLSConfig(files ...string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	var ca string
	switch len(files) {
	case 0:
	case 1:
		ca = files[0]
	case 2, 3:
		cert, err := tls.LoadX509KeyPair(files[0], files[1])
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
		if len(files) == 3 {
			ca = files[2]
		}
	default:
		return nil, fmt.Errorf("want at most CERT KEY CA, got %d files", len(files))
	}
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("CA: " + ca + ": no PEM certificate in it")
		}
		c.RootCAs = pool
	}
	return c, nil
}
