package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// reloadDebounce is how long the files must be quiet after an event
	// before they are read: a writer replacing both files raises several.
	reloadDebounce = 100 * time.Millisecond
	// reloadPoll is how often the files are read in case an event was
	// missed, or the directories could not be watched.
	reloadPoll = time.Minute
)

// Keypair serves a certificate and key loaded from files, reloaded when
// they change. Its methods are safe for concurrent use; Run is called once.
type Keypair struct {
	certFile, keyFile string
	log               *slog.Logger
	debounce, poll    time.Duration

	cur     atomic.Pointer[served]
	reloads atomic.Uint64

	mu   sync.Mutex // serialises check; guards good and seen
	good pair       // the bytes of the served pair
	seen pair       // the bytes last read, good or not
}

// served is a parsed pair, swapped whole.
type served struct {
	cert *tls.Certificate
	leaf *x509.Certificate
}

// pair is the bytes of a certificate file and a key file.
type pair struct {
	cert, key []byte
}

func (p pair) equal(q pair) bool {
	return bytes.Equal(p.cert, q.cert) && bytes.Equal(p.key, q.key)
}

// NewKeypair loads the certificate and key from certFile and keyFile (PEM,
// as tls.LoadX509KeyPair reads them). It fails if they cannot be read or do
// not make a pair, so a Keypair always has a certificate to serve. Run
// keeps it current; log receives the reloads and the rejected pairs (nil
// discards them).
func NewKeypair(certFile, keyFile string, log *slog.Logger) (*Keypair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Keypair{
		certFile: certFile, keyFile: keyFile, log: log,
		debounce: reloadDebounce, poll: reloadPoll,
	}
	p, err := k.read()
	if err != nil {
		return nil, err
	}
	s, err := parse(p)
	if err != nil {
		return nil, fmt.Errorf("certs: loading %s and %s: %w", certFile, keyFile, err)
	}
	k.good, k.seen = p, p
	k.cur.Store(s)
	return k, nil
}

// Run keeps the served pair current until ctx is done, then returns
// ctx.Err(). It watches the directories holding the two files, as a
// Kubernetes Secret volume swaps its "..data" symlink and editors and mv
// replace files rather than write them, and reads both files shortly after
// the events settle. It also reads them every minute, in case an event was
// missed. A pair that does not load (half-written, mismatched, garbage) is
// logged as a warning and the served one stays; the next change is tried
// again. If the directories cannot be watched at all, Run logs a warning
// and only reads the files every minute.
func (k *Keypair) Run(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dirs := []string{filepath.Dir(k.certFile)}
	if d := filepath.Dir(k.keyFile); d != dirs[0] {
		dirs = append(dirs, d)
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		k.log.Warn("certs: cannot watch, polling only",
			"cert", k.certFile, "key", k.keyFile, "every", k.poll, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
		k.watch(w, dirs)
	}
	// What changed before the watches stood raised no event.
	k.check()

	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(k.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-events:
			if !ok {
				events = nil // the fallback poll goes on
				continue
			}
			debounce.Reset(k.debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Most likely an overflow: events were lost, read again.
			k.log.Warn("certs: watch error", "cert", k.certFile, "key", k.keyFile, "err", err)
			debounce.Reset(k.debounce)
		case <-debounce.C:
			k.check()
		case <-poll.C:
			if w != nil && k.watch(w, dirs) {
				k.log.Info("certs: watching again", "dirs", dirs)
			}
			k.check()
		}
	}
}

// watch adds the directories w does not watch (a watched directory that is
// removed drops its watch) and reports whether it added one.
func (k *Keypair) watch(w *fsnotify.Watcher, dirs []string) (added bool) {
	have := w.WatchList()
	for _, d := range dirs {
		if slices.Contains(have, d) {
			continue
		}
		if err := w.Add(d); err != nil {
			k.log.Warn("certs: cannot watch", "dir", d, "err", err)
			continue
		}
		added = true
	}
	return added
}

// check reads both files and serves them if they changed and make a pair.
func (k *Keypair) check() {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, err := k.read()
	if err != nil {
		// A Secret volume swap or a mv in progress, or a file gone.
		k.log.Warn("certs: cannot read the keypair, the served one stays",
			"cert", k.certFile, "key", k.keyFile, "err", err)
		k.seen = pair{}
		return
	}
	if p.equal(k.seen) {
		return // unchanged, or the same broken pair already reported
	}
	k.seen = p
	if p.equal(k.good) {
		return // back to what is served
	}
	s, err := parse(p)
	if err != nil {
		k.log.Warn("certs: keypair rejected, the served one stays",
			"cert", k.certFile, "key", k.keyFile, "err", err)
		return
	}
	k.good = p
	k.cur.Store(s)
	k.reloads.Add(1)
	k.log.Info("certs: keypair reloaded", "cert", k.certFile, "key", k.keyFile,
		"subject", s.leaf.Subject.CommonName, "serial", s.leaf.SerialNumber.Text(16),
		"notAfter", s.leaf.NotAfter)
}

func (k *Keypair) read() (pair, error) {
	c, err := os.ReadFile(k.certFile)
	if err != nil {
		return pair{}, fmt.Errorf("certs: %w", err)
	}
	key, err := os.ReadFile(k.keyFile)
	if err != nil {
		return pair{}, fmt.Errorf("certs: %w", err)
	}
	return pair{cert: c, key: key}, nil
}

func parse(p pair) (*served, error) {
	c, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		return nil, err
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &served{cert: &c, leaf: leaf}, nil
}

// errNoCertificate is returned by a zero Keypair, which has nothing to serve.
var errNoCertificate = errors.New("certs: no certificate loaded")

// GetCertificate returns the served certificate; it is meant for
// tls.Config.GetCertificate and does not lock.
func (k *Keypair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s := k.cur.Load()
	if s == nil {
		return nil, errNoCertificate
	}
	return s.cert, nil
}

// Reloads returns how many times a changed pair was loaded and served
// after the first load.
func (k *Keypair) Reloads() uint64 {
	return k.reloads.Load()
}

// Current returns the leaf certificate being served, nil only for a zero
// Keypair.
func (k *Keypair) Current() *x509.Certificate {
	s := k.cur.Load()
	if s == nil {
		return nil
	}
	return s.leaf
}

// ServerConfig returns a TLS server configuration serving k's certificate,
// TLS 1.2 or later.
func ServerConfig(k *Keypair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: k.GetCertificate,
	}
}
