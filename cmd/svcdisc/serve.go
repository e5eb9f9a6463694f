package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	stdhttp "net/http"
	"net/http/pprof"
	"net/netip"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/miekg/dns"
	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/forward"
	"github.com/svcdisc/svcdisc/health"
	"github.com/svcdisc/svcdisc/metrics"
	"github.com/svcdisc/svcdisc/plugin"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	"github.com/svcdisc/svcdisc/resolver"
	"github.com/svcdisc/svcdisc/zones"
)

// shutdownGrace bounds how long in-flight queries may take at shutdown.
const shutdownGrace = 5 * time.Second

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve cluster DNS",
		Description: "Serves the zones of a Corefile (the built-in default is Corefile.example,\n" +
			"kubeadm's CoreDNS configuration) from a live API server (--kubeconfig, the\n" +
			"in-cluster configuration, $KUBECONFIG or ~/.kube/config) or from manifests\n" +
			"(--manifests), and forwards and caches every other name.",
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
			// Before the cluster loads; logged once serving.
			memLimit := setMemoryLimit(memlimit.FromCgroup)
			useSteadyGC()
			cfg, err := loadConfig(c.String("conf"))
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			inst, err := start(ctx, cfg, serveFlags{
				conf:      c.String("conf"),
				manifests: c.String("manifests"), kubeconfig: c.String("kubeconfig"), dnsAddr: c.String("dns-addr"),
			}, log)
			if err != nil {
				return err
			}
			memLimit.log(log)
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
	conf       string // the Corefile read, "" for the built-in one
	manifests  string
	kubeconfig string
	dnsAddr    string
}

// source is a running supplier of objects to a zone.
type source interface {
	Run(ctx context.Context) error
}

// plan is everything a configuration builds before anything listens: the
// blocks of each DNS address, the HTTP endpoints of each address, and the
// parts that run (object sources, upstream health checks).
type plan struct {
	order    []string // DNS addresses, in configuration order
	blocks   map[string][]*resolver.Block
	loops    map[string]*loopGuard
	muxes    map[string]*stdhttp.ServeMux
	sources  []source
	upstream []*forward.Forwarder
	// runners are handlers with background work, run with the plan.
	runners  []plugin.Runner
	checks   []health.Check
	met      *metrics.Metrics
	lameduck time.Duration
	reload   *config.Reload
	// limiters rate-limit the UDP queries of an address; a reload builds
	// new ones, with fresh buckets.
	limiters map[string]*resolver.RateLimiter
}

// build turns cfg into a plan. Manifests are read here, so a broken tree
// fails; API servers are only watched once the plan runs.
func build(cfg *config.Config, flags serveFlags, ready *health.Ready, log *slog.Logger) (*plan, error) {
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
	// Each block's listen addresses: --dns-addr when given, its bind
	// addresses on its port, or every address on its port.
	addrs := make([][]string, len(cfg.Servers))
	for i, srv := range cfg.Servers {
		switch {
		case flags.dnsAddr != "":
			addrs[i] = []string{flags.dnsAddr}
		case srv.Bind != nil:
			hosts, err := srv.Bind.Hosts()
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", srv.File, srv.Line, err)
			}
			if len(hosts) == 0 {
				return nil, fmt.Errorf("%s:%d: bind: no address left to listen on", srv.File, srv.Line)
			}
			for _, h := range hosts {
				addrs[i] = append(addrs[i], net.JoinHostPort(h, srv.Port))
			}
		default:
			addrs[i] = []string{srv.Addr()}
		}
	}
	var listens []string
	p := &plan{blocks: make(map[string][]*resolver.Block), loops: make(map[string]*loopGuard), muxes: make(map[string]*stdhttp.ServeMux),
		limiters: make(map[string]*resolver.RateLimiter)}
	for i, srv := range cfg.Servers {
		listens = append(listens, addrs[i]...)
		if srv.Prometheus != nil && p.met == nil {
			p.met = metrics.New(metrics.Options{Version: versionString(), Names: metrics.Names(srv.Prometheus.Names)})
		}
		if srv.Reload != nil && p.reload == nil {
			p.reload = srv.Reload
		}
	}
	if err := p.rateLimits(cfg, addrs); err != nil {
		return nil, err
	}
	// A listener shared by several blocks gets each endpoint once.
	handled := make(map[string]bool)
	handle := func(addr, path string, h stdhttp.Handler) {
		if handled[addr+" "+path] {
			return
		}
		handled[addr+" "+path] = true
		if p.muxes[addr] == nil {
			p.muxes[addr] = stdhttp.NewServeMux()
		}
		p.muxes[addr].Handle(path, h)
	}
	var forwarders []*forward.Forwarder
	for i, srv := range cfg.Servers {
		for _, w := range srv.Warnings {
			log.Warn(w)
		}
		addr := addrs[i][0] // names the block in metrics, as CoreDNS's server label
		if srv.Ready != "" {
			handle(srv.Ready, "/ready", ready)
		}
		if srv.Health != nil {
			handle(srv.Health.Addr, "/health", health.Alive{})
			p.lameduck = max(p.lameduck, srv.Health.Lameduck)
		}
		if srv.Prometheus != nil {
			handle(srv.Prometheus.Addr, "/metrics", p.met.Handler())
		}
		if srv.Pprof != "" {
			handle(srv.Pprof, "/debug/pprof/", stdhttp.HandlerFunc(pprof.Index))
			handle(srv.Pprof, "/debug/pprof/cmdline", stdhttp.HandlerFunc(pprof.Cmdline))
			handle(srv.Pprof, "/debug/pprof/profile", stdhttp.HandlerFunc(pprof.Profile))
			handle(srv.Pprof, "/debug/pprof/symbol", stdhttp.HandlerFunc(pprof.Symbol))
			handle(srv.Pprof, "/debug/pprof/trace", stdhttp.HandlerFunc(pprof.Trace))
		}
		parts := blockParts{met: p.met, log: log}
		for _, a := range addrs[i] {
			parts.servers = append(parts.servers, "dns://"+a)
		}
		if p.met != nil {
			// Handlers outside the chain that CoreDNS has in it.
			enabled := []string{}
			if srv.Prometheus != nil {
				enabled = append(enabled, "prometheus")
			}
			if srv.Loop {
				enabled = append(enabled, "loop")
			}
			p.met.PluginsEnabled(parts.servers, srv.Zones, enabled)
		}
		if k := srv.Kubernetes; k != nil {
			z, src, err := newZone(srv, k, flags, nsAddrs, log)
			if err != nil {
				return nil, err
			}
			p.sources = append(p.sources, src)
			p.checks = append(p.checks, health.Check{Name: "kubernetes " + strings.Join(k.Zones, " "), Ready: z.Synced})
			parts.zone = z
			if p.met != nil {
				if err := p.met.Register(metrics.NewZoneCollector(addr, k.Zones, z)); err != nil {
					return nil, err
				}
			}
		}
		for _, f := range srv.Forwards {
			fw, err := newForward(srv, f, listens, p.met, log)
			if err != nil {
				return nil, err
			}
			p.upstream = append(p.upstream, fw)
			forwarders = append(forwarders, fw)
			var up pforward.Upstream = fw
			if p.met != nil {
				up = p.met.CountRejects(fw)
			}
			parts.forwards = append(parts.forwards, up)
		}
		if len(srv.Forwards) > 0 && srv.Loop {
			for _, a := range addrs[i] {
				p.loops[a] = newLoopGuard(srv.Zones[0])
			}
		}
		if c := srv.Cache; c != nil {
			ch := cache.New(cacheOptions(c))
			parts.cache = ch
			if p.met != nil {
				if err := p.met.Register(p.met.CacheCollector("dns://"+addr, c.Zones, ch)); err != nil {
					return nil, err
				}
			}
		}
		b, err := p.chain(srv, parts)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs[i] {
			if p.blocks[a] == nil {
				p.order = append(p.order, a)
			}
			p.blocks[a] = append(p.blocks[a], b)
		}
	}
	if p.met != nil && len(forwarders) > 0 {
		if err := p.met.Register(p.met.ForwardCollector(forwarders...)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// rateLimits builds the limiter of each address whose server blocks have
// a ratelimit directive. The limiter runs before a query is parsed (a
// forged flood must cost little), so it covers the whole address: every
// block sharing the address must then say the same.
func (p *plan) rateLimits(cfg *config.Config, addrs [][]string) error {
	first := make(map[string]config.Server)
	for i, srv := range cfg.Servers {
		for _, addr := range addrs[i] {
			f, seen := first[addr]
			if !seen {
				first[addr] = srv
				continue
			}
			if !sameRateLimit(f.RateLimit, srv.RateLimit) {
				line := srv.Line
				if srv.RateLimit != nil {
					line = srv.RateLimit.Line
				}
				return fmt.Errorf("%s:%d: ratelimit: the server blocks on %s must have the same ratelimit, or none (see line %d): "+
					"it limits the whole address, before a query's zone is known", srv.File, line, addr, f.Line)
			}
		}
	}
	for addr, srv := range first {
		r := srv.RateLimit
		if r == nil {
			continue
		}
		o := resolver.RateLimit{Rate: r.Rate, Burst: r.Burst, IPv4Prefix: r.IPv4Prefix, IPv6Prefix: r.IPv6Prefix,
			Slip: r.Slip, Exempt: r.Exempt}
		if p.met != nil {
			o.OnLimit = p.met.RateLimited()
		}
		l, err := resolver.NewRateLimiter(o)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", srv.File, r.Line, err)
		}
		p.limiters[addr] = l
	}
	return nil
}

// sameRateLimit compares two ratelimit directives, wherever they are.
func sameRateLimit(a, b *config.RateLimit) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Rate == b.Rate && a.Burst == b.Burst && a.IPv4Prefix == b.IPv4Prefix && a.IPv6Prefix == b.IPv6Prefix &&
		a.Slip == b.Slip && slices.Equal(a.Exempt, b.Exempt)
}

// handler is the DNS handler of one address of the plan.
func (p *plan) handler(addr string, log *slog.Logger) dns.Handler {
	rh := resolver.NewHandler(p.blocks[addr], log)
	if p.met != nil {
		rh.SetObserver(p.met.Observer("dns://" + addr))
		rh.SetMeters(p.met.Meters("dns://" + addr))
	}
	var h dns.Handler = rh
	if g := p.loops[addr]; g != nil {
		g.next = rh
		h = g
	}
	if l := p.limiters[addr]; l != nil {
		// Outermost, so that the server finds it; a reload's new handler
		// brings the new configuration's limiter, or none.
		h = resolver.WithRateLimit(h, l)
	}
	return h
}

// run starts the plan's sources and upstream health checks until ctx ends;
// failures go to errc.
func (p *plan) run(ctx context.Context, errc chan<- error) {
	for _, f := range p.upstream {
		f.Start()
	}
	for _, r := range p.runners {
		go r.Run(ctx)
	}
	for _, src := range p.sources {
		go func() {
			if err := src.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- err
			}
		}()
	}
	go func() {
		<-ctx.Done()
		for _, f := range p.upstream {
			f.Stop()
		}
	}()
}

func (p *plan) synced() bool {
	for _, c := range p.checks {
		if !c.Ready() {
			return false
		}
	}
	return true
}

// instance is a running server: its listeners and its current plan.
type instance struct {
	log     *slog.Logger
	flags   serveFlags
	ready   *health.Ready
	servers map[string]*resolver.Server
	probes  map[string]*health.Server
	errc    chan error

	mu     sync.Mutex // guards plan and cancel, which a reload replaces
	plan   *plan
	cancel context.CancelFunc // stops the current plan's sources
}

// current returns the running plan.
func (in *instance) current() *plan {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.plan
}

// start builds cfg and starts listening. Nothing is bound before the
// configuration, the objects and the upstreams are known good.
func start(ctx context.Context, cfg *config.Config, flags serveFlags, log *slog.Logger) (*instance, error) {
	in := &instance{log: log, flags: flags, ready: health.NewReady(),
		servers: make(map[string]*resolver.Server), probes: make(map[string]*health.Server), errc: make(chan error, 64)}
	loaded := gcWhileFirstLoading()
	started := false
	defer func() {
		if !started {
			loaded()
		}
	}()
	p, err := build(cfg, flags, in.ready, log)
	if err != nil {
		return nil, err
	}
	for _, g := range p.loops {
		g.errc = in.errc
	}
	for _, addr := range p.order {
		s, err := resolver.Listen(addr, p.handler(addr, log))
		if err != nil {
			in.shutdown()
			return nil, err
		}
		in.servers[addr] = s
	}
	for addr, m := range p.muxes {
		ps, err := health.Listen(addr, m)
		if err != nil {
			in.shutdown()
			return nil, fmt.Errorf("http: %w", err)
		}
		in.probes[addr] = ps
	}
	in.ready.SetChecks(p.checks...)
	for _, addr := range p.order {
		in.servers[addr].Start(in.errc)
		log.Info("serving DNS", "addr", in.servers[addr].Addr(), "proto", "udp+tcp")
	}
	for _, ps := range in.probes {
		ps.Serve(in.errc)
		log.Info("serving HTTP", "addr", ps.Addr())
	}
	pctx, cancel := context.WithCancel(ctx)
	in.plan, in.cancel = p, cancel
	p.run(pctx, in.errc)
	started = true
	go whenReady(pctx, p.checks, loaded)
	for addr, g := range p.loops {
		go g.probe(pctx, in.servers[addr].Addr(), log)
	}
	if p.reload != nil && flags.conf != "" {
		go in.watchCorefile(ctx, flags.conf, p.reload)
	}
	return in, nil
}

// dnsAddr returns the bound address of the first DNS listener, for tests.
func (in *instance) dnsAddr() string { return in.servers[in.current().order[0]].Addr() }

// forwardTimeout bounds a forwarded query, retries included: well under the
// 5 s after which a client's resolver retries.
const forwardTimeout = 2 * time.Second

// newForward resolves a forward directive's upstreams (reading resolv.conf
// files), loads its TLS files and refuses an upstream that is this server
// itself.
func newForward(srv config.Server, f *config.Forward, listens []string, met *metrics.Metrics, log *slog.Logger) (*forward.Forwarder, error) {
	var ups []string
	for _, to := range f.To {
		if config.IsResolvConf(to) {
			ns, err := forward.ParseResolvConf(config.ResolvConfPath(to))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: forward: %w", srv.File, f.Line, err)
			}
			ups = append(ups, ns...)
			continue
		}
		ups = append(ups, to)
	}
	// A listener on port 0 gets a port no upstream can name yet.
	listens = slices.DeleteFunc(slices.Clone(listens), func(l string) bool { return strings.HasSuffix(l, ":0") })
	if err := forward.SelfLoop(ups, listens); err != nil {
		return nil, fmt.Errorf("%s:%d: forward: %w", srv.File, f.Line, err)
	}
	opts := forward.Options{
		Upstreams: ups, Policy: f.Policy, ForceTCP: f.ForceTCP, PreferUDP: f.PreferUDP, MaxConcurrent: f.MaxConcurrent,
		Timeout: forwardDeadline(f), HealthCheck: f.HealthCheck, MaxFails: f.MaxFails,
		HealthDomain: f.HealthDomain, HealthNoRec: f.HealthNoRec,
		Expire: f.Expire, MaxAge: f.MaxAge, MaxIdleConns: f.MaxIdleConns, ReadTimeout: f.ReadTimeout,
		Failover: f.Failover, FailFast: f.FailFast, MaxAttempts: f.MaxConnectAttempts, SourceAddr: f.SourceAddress,
		TLSServerName: f.TLSServerName, Log: log.With("forward", f.From),
	}
	if f.Expire == 0 {
		opts.Expire = -1 // expire 0: never reuse
	}
	if f.TLSSet {
		c, err := forward.TLSConfig(f.TLS...)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: tls: %w", srv.File, f.TLSLine, err)
		}
		opts.TLS = c
	}
	if met != nil {
		opts.OnExchange = met.ObserveUpstream
	}
	fw, err := forward.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: forward: %w", srv.File, f.Line, err)
	}
	return fw, nil
}

// forwardDeadline bounds a query of forward f over all its upstreams: the
// usual 2 s, or more when read_timeout gives one upstream more.
func forwardDeadline(f *config.Forward) time.Duration {
	return max(forwardTimeout, f.ReadTimeout)
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
	zo := zones.Options{
		Zones: k.Zones, TTL: k.TTL, Pods: mode, Namespaces: k.Namespaces,
		EndpointPodNames: k.EndpointPodNames, NSAddrs: nsAddrs,
		NoEndpoints: k.NoEndpoints, IgnoreEmptyService: k.IgnoreEmptyService,
	}
	if k.NamespaceLabels != "" {
		sel, err := labels.Parse(k.NamespaceLabels)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: namespace_labels: %w", srv.File, srv.Line, err)
		}
		zo.NamespaceLabels = sel
	}
	z := zones.New(zo)
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
		Pods:        mode == zones.PodsVerified,
		UserAgent:   "svcdisc/" + versionString(),
		NoEndpoints: k.NoEndpoints, NamespaceLabels: k.NamespaceLabels, EndpointPodNames: k.EndpointPodNames,
		TLSCert: k.TLSCert, TLSKey: k.TLSKey, TLSCA: k.TLSCA,
		QPS: k.APIServerQPS, Burst: k.APIServerBurst, MaxInflight: k.APIServerMaxInflight,
		// A relist makes as much garbage as the first load.
		Listing: lowGCWhileLoading,
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
// down: /ready fails at once, DNS keeps answering for the lameduck
// duration, and then the listeners stop, letting queries in flight finish.
func (in *instance) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		in.ready.Stopping()
		if d := in.current().lameduck; d > 0 {
			in.log.Info("lameduck: still answering before shutdown", "for", d)
			time.Sleep(d)
		}
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
	in.mu.Lock()
	if in.cancel != nil {
		in.cancel()
	}
	in.mu.Unlock()
	return errors.Join(errs...)
}
