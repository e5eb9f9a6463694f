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
			inst, err := start(ctx, cfg, serveFlags{manifests: c.String("manifests"), dnsAddr: c.String("dns-addr")}, log)
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
	manifests string
	dnsAddr   string
}

// instance is a running server: its listeners and its object sources.
type instance struct {
	log     *slog.Logger
	servers []*resolver.Server
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
	var sources []*zones.Manifests
	for _, srv := range cfg.Servers {
		b := &resolver.Block{Zones: srv.Zones, Log: srv.Log, Errors: srv.Errors}
		if k := srv.Kubernetes; k != nil {
			mode, err := zones.ParsePodMode(k.Pods)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", srv.File, srv.Line, err)
			}
			z := zones.New(zones.Options{
				Zones: k.Zones, TTL: k.TTL, Pods: mode, Namespaces: k.Namespaces,
				EndpointPodNames: k.EndpointPodNames, NSAddrs: nsAddrs,
			})
			path := k.Manifests
			if flags.manifests != "" {
				path = flags.manifests
			}
			if path == "" {
				return nil, fmt.Errorf("%s:%d: kubernetes has no object source: give --manifests or the manifests option", srv.File, srv.Line)
			}
			m := zones.NewManifests(path, z, log.With("source", "manifests", "path", path))
			if err := m.Load(); err != nil {
				return nil, fmt.Errorf("manifests: %w", err)
			}
			sources = append(sources, m)
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
	inst := &instance{log: log, errc: make(chan error, 2*len(order)+len(sources))}
	for _, addr := range order {
		s, err := resolver.Listen(addr, resolver.NewHandler(byAddr[addr], log))
		if err != nil {
			inst.shutdown()
			return nil, err
		}
		inst.servers = append(inst.servers, s)
	}
	for _, s := range inst.servers {
		s.Start(inst.errc)
		log.Info("serving DNS", "addr", s.Addr(), "proto", "udp+tcp")
	}
	for _, m := range sources {
		go func() {
			if err := m.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				inst.errc <- fmt.Errorf("manifests watch: %w", err)
			}
		}()
	}
	return inst, nil
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
	return errors.Join(errs...)
}
