// Package certs owns the TLS material of svcdisc's admission webhook.
//
// Generate issues a self-signed CA and a serving certificate signed by it,
// both ECDSA P-256, for the webhook Service's DNS names (and IPs, for
// tests); Bundle.WriteFiles writes them as ca.crt, ca.key, tls.crt and
// tls.key, each file replaced atomically. The CA certificate is what a
// MutatingWebhookConfiguration's caBundle carries.
//
// A Keypair serves a certificate and key read from files and reloads them
// when they change: it watches the directories that hold them, so it sees
// a Kubernetes Secret volume's "..data" symlink swap as well as an editor's
// or mv's replacement, and it re-reads them every minute in case an event
// was missed. A broken or half-written pair is logged and skipped; the
// last good certificate stays served.
//
//	kp, err := certs.NewKeypair("/tls/tls.crt", "/tls/tls.key", log)
//	if err != nil {
//		return err
//	}
//	go kp.Run(ctx)
//	srv := &http.Server{Addr: ":8443", TLSConfig: certs.ServerConfig(kp)}
//	err = srv.ListenAndServeTLS("", "")
package certs
