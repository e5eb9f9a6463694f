package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/svcdisc/svcdisc/certs"
)

// certsCommand is `svcdisc certs`: it issues a self-signed CA and a serving
// certificate for the admission webhook, writes them into --out-dir, and
// prints the CA certificate in base64, the caBundle of a
// MutatingWebhookConfiguration:
//
//	CA=$(svcdisc certs --dns-name svcdisc.kube-system.svc --out-dir /tmp/tls)
func certsCommand() *cli.Command {
	return &cli.Command{
		Name:  "certs",
		Usage: "issue a CA and a serving certificate for the admission webhook",
		Description: "Writes ca.crt, ca.key, tls.crt and tls.key into --out-dir (keys 0600) and\n" +
			"prints the base64 of ca.crt, the caBundle of a MutatingWebhookConfiguration,\n" +
			"on standard output:\n\n" +
			"  CA=$(svcdisc certs --dns-name svcdisc.kube-system.svc --out-dir tls)",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "dns-name", Usage: "DNS `NAME` the certificate is for (repeatable); the first is its CommonName"},
			&cli.StringSliceFlag{Name: "ip", Usage: "`IP` address the certificate is for (repeatable)"},
			&cli.StringFlag{Name: "out-dir", Usage: "`DIR` to write the files into (created if missing)"},
			&cli.DurationFlag{Name: "validity", Value: certs.DefaultValidity, Usage: "how long the certificates are valid"},
			&cli.BoolFlag{Name: "reuse-ca", Usage: "rotate: sign a new serving certificate with the ca.crt and ca.key already in --out-dir, so the caBundle stays the same"},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return err },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("certs: unexpected argument %q", c.Args().First())
			}
			opts := certs.Options{DNSNames: c.StringSlice("dns-name"), Validity: c.Duration("validity")}
			for _, s := range c.StringSlice("ip") {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("certs: --ip %q is not an IP address", s)
				}
				opts.IPs = append(opts.IPs, ip)
			}
			if len(opts.DNSNames) == 0 && len(opts.IPs) == 0 {
				return errors.New("certs: --dns-name or --ip is required")
			}
			if opts.Validity <= 0 {
				return fmt.Errorf("certs: --validity %s is not positive", opts.Validity)
			}
			dir := c.String("out-dir")
			if dir == "" {
				return errors.New("certs: --out-dir is required")
			}
			var b *certs.Bundle
			var err error
			if c.Bool("reuse-ca") {
				caCert, rerr := os.ReadFile(filepath.Join(dir, certs.CACertFile))
				if rerr != nil {
					return fmt.Errorf("certs: --reuse-ca: %w", rerr)
				}
				caKey, rerr := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
				if rerr != nil {
					return fmt.Errorf("certs: --reuse-ca: %w", rerr)
				}
				b, err = certs.Renew(caCert, caKey, opts)
			} else {
				b, err = certs.Generate(opts)
			}
			if err != nil {
				return err
			}
			if err := b.WriteFiles(dir); err != nil {
				return err
			}
			for _, name := range []string{certs.CACertFile, certs.CAKeyFile, certs.CertFile, certs.KeyFile} {
				fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", filepath.Join(dir, name))
			}
			_, err = fmt.Fprintln(c.App.Writer, base64.StdEncoding.EncodeToString(b.CACert))
			return err
		},
	}
}
