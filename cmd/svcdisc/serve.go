package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/health"
	"github.com/svcdisc/svcdisc/resolver"
	"github.com/svcdisc/svcdisc/zones"
)

// shutdownGrace bounds how long in-flight queries may take at shutdown.
const shutdownGrace = 5 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve cluster DNS",
		Description: "Serves the zones of a Corefile (the built-in default is Corefile.example:\n" +
			"cluster.local plus the reverse zones, pods insecure, ttl 30) from Kubernetes\n" +
			"objects read from manifests, reloading them when the files change.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "conf", Usage: "Corefile `FILE` (default: the built-in configuration)"},
			&cli.StringFlag{Name: "manifests", Usage: "YAML/JSON `PATH` (file or directory) to serve objects from; overrides the manifests option"},
			&cli.StringFlag{Name: "kubeconfig", Usage: "kubeconfig `FILE` of the API server to watch; overrides the kubeconfig option"},
			&cli.StringFlag{Name: "dns-addr", Usage: "listen on `HOST:PORT` instead of the server blocks' ports"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "log as `text` or json"},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return err },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("serve: unexpected argument %q", c.Args().First())
			}
			log, err := newLogger(c.App.ErrWriter, c.String("log-format"))
			if err != nil {
				return err
			}
			cfg, err := loadConfig(c.String("conf"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			inst, err := start(ctx, cfg, serveFlags{
				manifests: c.String("manifests"), kubeconfig: c.String("kubeconfig"), dnsAddr: c.String("dns-addr"),
			}, log)
			if err != nil {
				return err
			}
			return inst.wait(ctx)
		},
	}
}

func newLogger(w io.Writer, format string) (*slog.Logger, error) {
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Parse("Corefile (built-in)", strings.NewReader(config.Default))
	}
	return config.Load(path)
}

type serveFlags struct {
	manifests  string
	kubeconfig string
	dnsAddr    string
}

// source is a running supplier of objects to a zone.
type source interface {
	Run(ctx context.Context) error
}

// instance is a running server: its listeners and its object sources.
type instance struct {
	log     *slog.Logger
	servers []*resolver.Server
	probes  []*health.Server
	errc    chan error
}

// start builds the zones of cfg, loads their objects, and starts listening.
// Nothing is bound before the configuration and the objects are known good.
func start(ctx context.Context, cfg *config.Config, flags serveFlags, log *slog.Logger) (*instance, error) {
	if flags.dnsAddr != "" {
		if _, _, err := net.SplitHostPort(flags.dnsAddr); err != nil {
			return nil, fmt.Errorf("--dns-addr %q: %w", flags.dnsAddr, err)
		}
	}
	var nsAddrs []netip.Addr
	if host, _, err := net.SplitHostPort(flags.dnsAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			nsAddrs = []netip.Addr{a}
		}
	}
	byAddr := make(map[string][]*resolver.Block)
	var order []string
	var sources []source
	var checks []health.Check
	readyAddrs := make(map[string]bool)
	for _, srv := range cfg.Servers {
		b := &resolver.Block{Zones: srv.Zones, Log: srv.Log, Errors: srv.Errors}
		if srv.Ready != "" {
			readyAddrs[srv.Ready] = true
		}
		if k := srv.Kubernetes; k != nil {
			z, src, err := newZone(srv, k, flags, nsAddrs, log)
			if err != nil {
				return nil, err
			}
			sources = append(sources, src)
			checks = append(checks, health.Check{Name: "kubernetes " + strings.Join(k.Zones, " "), Ready: z.Synced})
			b.Kubernetes = &resolver.Kubernetes{Zone: z, Fallthrough: k.Fallthrough}
		}
		addr := srv.Addr()
		if flags.dnsAddr != "" {
			addr = flags.dnsAddr
		}
		if byAddr[addr] == nil {
			order = append(order, addr)
		}
		byAddr[addr] = append(byAddr[addr], b)
	}
	inst := &instance{log: log, errc: make(chan error, 2*len(order)+len(sources)+len(readyAddrs))}
	for _, addr := range order {
		s, err := resolver.Listen(addr, resolver.NewHandler(byAddr[addr], log))
		if err != nil {
			inst.shutdown()
			return nil, err
		}
		inst.servers = append(inst.servers, s)
	}
	ready := health.NewReady(checks...)
	for addr := range readyAddrs {
		p, err := health.Listen(addr, ready)
		if err != nil {
			inst.shutdown()
			return nil, fmt.Errorf("ready: %w", err)
		}
		inst.probes = append(inst.probes, p)
	}
	for _, s := range inst.servers {
		s.Start(inst.errc)
		log.Info("serving DNS", "addr", s.Addr(), "proto", "udp+tcp")
	}
	for _, p := range inst.probes {
		p.Serve(inst.errc)
		log.Info("serving readiness", "addr", p.Addr(), "path", "/ready")
	}
	for _, src := range sources {
		go func() {
			if err := src.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				inst.errc <- err
			}
		}()
	}
	return inst, nil
}

// newZone builds the zone of a kubernetes directive and its object source:
// manifests when given (flag or option), otherwise a live API server.
// Manifests are read here, so a broken tree fails the start; an API server
// is watched in the background, the zone answering SERVFAIL until synced.
func newZone(srv config.Server, k *config.Kubernetes, flags serveFlags, nsAddrs []netip.Addr, log *slog.Logger) (*zones.Zone, source, error) {
	mode, err := zones.ParsePodMode(k.Pods)
	if err != nil {
		return nil, nil, fmt.Errorf("%s:%d: %w", srv.File, srv.Line, err)
	}
	z := zones.New(zones.Options{
		Zones: k.Zones, TTL: k.TTL, Pods: mode, Namespaces: k.Namespaces,
		EndpointPodNames: k.EndpointPodNames, NSAddrs: nsAddrs,
	})
	path := k.Manifests
	if flags.manifests != "" {
		path = flags.manifests
	}
	if path != "" {
		m := zones.NewManifests(path, z, log.With("source", "manifests", "path", path))
		if err := m.Load(); err != nil {
			return nil, nil, fmt.Errorf("manifests: %w", err)
		}
		return z, m, nil
	}
	opts := zones.KubeOptions{
		Kubeconfig: k.Kubeconfig, Context: k.Context, Endpoint: k.Endpoint,
		Namespaces: k.Namespaces, LabelSelector: k.Labels,
		Pods:      mode == zones.PodsVerified,
		UserAgent: "svcdisc/" + versionString(),
	}
	if flags.kubeconfig != "" {
		opts.Kubeconfig = flags.kubeconfig
	}
	rc, err := zones.RESTConfig(opts)
	if errors.Is(err, zones.ErrNoKubeconfig) {
		return nil, nil, fmt.Errorf("%s:%d: kubernetes has no object source: give --manifests or --kubeconfig, or run in a cluster", srv.File, srv.Line)
	}
	if err != nil {
		return nil, nil, err
	}
	kube, err := zones.NewKube(rc, z, opts, log.With("source", "kubernetes", "server", rc.Host))
	if err != nil {
		return nil, nil, err
	}
	log.Info("watching kubernetes", "server", rc.Host, "zones", strings.Join(k.Zones, " "))
	return z, kube, nil
}

// wait serves until ctx ends (SIGTERM/SIGINT) or a part fails, then shuts
// down, letting in-flight queries finish.
func (in *instance) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		in.log.Info("shutting down")
	case err = <-in.errc:
	}
	return errors.Join(err, in.shutdown())
}

func (in *instance) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var errs []error
	for _, s := range in.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	for _, p := range in.probes {
		errs = append(errs, p.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
