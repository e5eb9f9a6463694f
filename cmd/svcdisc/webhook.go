package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	stdhttp "net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/urfave/cli/v2"

	"github.com/svcdisc/svcdisc/certs"
	"github.com/svcdisc/svcdisc/envgen"
	"github.com/svcdisc/svcdisc/health"
	"github.com/svcdisc/svcdisc/metrics"
	"github.com/svcdisc/svcdisc/zones"
)

// sourceFlags are the object source of the env and webhook commands.
var sourceFlags = []cli.Flag{
	&cli.StringFlag{Name: "manifests", Usage: "read Services from YAML/JSON `PATH` (file or directory)"},
	&cli.StringFlag{Name: "kubeconfig", Usage: "watch Services through kubeconfig `FILE` (default: in-cluster, $KUBECONFIG, ~/.kube/config)"},
}

// serviceSource feeds store from the manifests at path or, when path is
// empty, a live API server, watching Services only (all the webhook's RBAC
// grants).
func serviceSource(path, kubeconfig string, store *envgen.Store, log *slog.Logger) (source, error) {
	if path != "" && kubeconfig != "" {
		return nil, errors.New("--manifests and --kubeconfig exclude each other")
	}
	if path != "" {
		m := zones.NewManifests(path, store, log.With("source", "manifests", "path", path))
		if err := m.Load(); err != nil {
			return nil, fmt.Errorf("manifests: %w", err)
		}
		return m, nil
	}
	opts := zones.KubeOptions{Kubeconfig: kubeconfig, ServicesOnly: true, UserAgent: "svcdisc/" + versionString()}
	rc, err := zones.RESTConfig(opts)
	if errors.Is(err, zones.ErrNoKubeconfig) {
		return nil, errors.New("no object source: give --manifests or --kubeconfig, or run in a cluster")
	}
	if err != nil {
		return nil, err
	}
	kube, err := zones.NewKube(rc, store, opts, log.With("source", "kubernetes", "server", rc.Host))
	if err != nil {
		return nil, err
	}
	return kube, nil
}

// webhookOptions are the webhook command's flags.
type webhookOptions struct {
	addr, certFile, keyFile, metricsAddr string
	manifests, kubeconfig                string
	limits                               envgen.Limits
	maxBody                              int64
	// readHeaderTimeout and readTimeout bound reading a request's headers
	// and the whole request; zero means the defaults. Tests shorten them.
	readHeaderTimeout, readTimeout time.Duration
}

// Default read bounds of the webhook: the API server sends an
// AdmissionReview in one go, well within them, while a client trickling
// its headers or body is cut off instead of holding a connection.
const (
	webhookReadHeaderTimeout = 5 * time.Second
	webhookReadTimeout       = 10 * time.Second
)

func webhookCommand() *cli.Command {
	return &cli.Command{
		Name:  "webhook",
		Usage: "serve the mutating admission webhook that injects service environment variables",
		Description: "Answers AdmissionReview v1 requests for Pod creation on POST /mutate (HTTPS only)\n" +
			"with a JSON Patch giving every container the service variables kubelet would,\n" +
			"or those the svcdisc.io/services annotation selects. /healthz, /readyz (ready once\n" +
			"Services are synced) and /metrics are served on the same port. The certificate\n" +
			"and key are reloaded when their files change.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: ":8443", Usage: "listen on `HOST:PORT` (HTTPS)"},
			&cli.StringFlag{Name: "tls-cert-file", Required: true, Usage: "serving certificate `FILE` (PEM)"},
			&cli.StringFlag{Name: "tls-key-file", Required: true, Usage: "serving key `FILE` (PEM)"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "also serve /metrics over plain HTTP on `HOST:PORT`"},
			&cli.IntFlag{Name: "max-vars", Value: envgen.DefaultLimits.MaxVars, Usage: "inject at most `N` variables per container (0: no limit)"},
			&cli.IntFlag{Name: "max-bytes", Value: envgen.DefaultLimits.MaxBytes, Usage: "inject at most `N` bytes of names and values per container (0: no limit)"},
			&cli.Int64Flag{Name: "max-body", Value: envgen.DefaultMaxBody, Usage: "refuse AdmissionReview bodies over `N` bytes"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log as `text` or json"},
		}, sourceFlags...),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return err },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("webhook: unexpected argument %q", c.Args().First())
			}
			log, err := newLogger(c.App.ErrWriter, c.String("log-format"))
			if err != nil {
				return err
			}
			if c.Int("max-vars") < 0 || c.Int("max-bytes") < 0 || c.Int64("max-body") <= 0 {
				return errors.New("webhook: --max-vars and --max-bytes must be 0 or more, --max-body more than 0")
			}
			memLimit := setMemoryLimit(memlimit.FromCgroup) // logged once serving
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			wh, err := startWebhook(ctx, webhookOptions{
				addr: c.String("addr"), certFile: c.String("tls-cert-file"), keyFile: c.String("tls-key-file"),
				metricsAddr: c.String("metrics-addr"), manifests: c.String("manifests"), kubeconfig: c.String("kubeconfig"),
				limits:  envgen.Limits{MaxVars: c.Int("max-vars"), MaxBytes: c.Int("max-bytes")},
				maxBody: c.Int64("max-body"),
			}, log)
			if err != nil {
				return fmt.Errorf("webhook: %w", err)
			}
			memLimit.log(log)
			return wh.wait(ctx)
		},
	}
}

// webhookServer is a running webhook: its HTTPS server, the optional
// metrics listener, and what feeds them.
type webhookServer struct {
	https   *stdhttp.Server
	ln      net.Listener
	metrics *health.Server
	errc    chan error
	cancel  context.CancelFunc
	log     *slog.Logger
}

func startWebhook(ctx context.Context, o webhookOptions, log *slog.Logger) (*webhookServer, error) {
	store := envgen.NewStore()
	src, err := serviceSource(o.manifests, o.kubeconfig, store, log)
	if err != nil {
		return nil, err
	}
	kp, err := certs.NewKeypair(o.certFile, o.keyFile, log.With("part", "tls"))
	if err != nil {
		return nil, err
	}
	met := metrics.New(metrics.Options{Version: versionString()})
	h := &envgen.Webhook{
		Mutator: &envgen.Mutator{Store: store, Limits: o.limits},
		Log:     log,
		Observe: met.Webhook(store.Len, kp.Reloads),
		MaxBody: o.maxBody,
	}
	ready := health.NewReady(health.Check{Name: "services not synced", Ready: store.Synced})
	ready.Path = "/readyz"
	mux := stdhttp.NewServeMux()
	mux.Handle("/mutate", h)
	mux.Handle("/healthz", health.Alive{Path: "/healthz"})
	mux.Handle("/readyz", ready)
	mux.Handle("/metrics", met.Handler())

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	readHeaderTimeout, readTimeout := webhookReadHeaderTimeout, webhookReadTimeout
	if o.readHeaderTimeout > 0 {
		readHeaderTimeout = o.readHeaderTimeout
	}
	if o.readTimeout > 0 {
		readTimeout = o.readTimeout
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &webhookServer{
		ln:     ln,
		errc:   make(chan error, 4),
		cancel: cancel,
		log:    log,
		https: &stdhttp.Server{
			Handler:   mux,
			TLSConfig: certs.ServerConfig(kp),
			// Bounded reads and idle connections: a slow client cannot
			// hold the API server's admission path or our sockets open.
			// ReadTimeout covers the body too, which ReadHeaderTimeout
			// alone would leave unbounded.
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       90 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
	}
	if o.metricsAddr != "" {
		w.metrics, err = health.Listen(o.metricsAddr, met.Handler())
		if err != nil {
			ln.Close()
			cancel()
			return nil, err
		}
		w.metrics.Serve(w.errc)
	}
	go func() {
		if err := src.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			w.errc <- fmt.Errorf("services: %w", err)
		}
	}()
	go func() { _ = kp.Run(ctx) }()
	go func() {
		if err := w.https.Serve(tls.NewListener(ln, w.https.TLSConfig)); err != nil && !errors.Is(err, stdhttp.ErrServerClosed) {
			w.errc <- fmt.Errorf("https %s: %w", ln.Addr(), err)
		}
	}()
	log.Info("webhook serving", "addr", ln.Addr().String(), "max_vars", o.limits.MaxVars, "max_bytes", o.limits.MaxBytes)
	return w, nil
}

// addr is the bound HTTPS address.
func (w *webhookServer) addr() string { return w.ln.Addr().String() }

// wait serves until ctx ends or a part fails, then lets requests in flight
// finish.
func (w *webhookServer) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-w.errc:
	}
	w.log.Info("webhook stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := w.https.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if w.metrics != nil {
		_ = w.metrics.Shutdown(sctx)
	}
	w.cancel()
	return err
}
