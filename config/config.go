package config

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// Default is the configuration svcdisc runs with when it is given no
// Corefile: the cluster DNS setup kubeadm ships for CoreDNS, cut down to the
// directives svcdisc implements. The repository's Corefile.example holds the
// same bytes.
const Default = `# svcdisc's built-in configuration: the Corefile kubeadm ships for CoreDNS.
# Move the listeners with --dns-addr (DNS) and by editing the addresses of
# health (:8080), ready (:8181) and prometheus (:9153) in a copy of this file.
.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

// DefaultPort is the port a server block listens on when its keys name none.
const DefaultPort = "53"

// DefaultTTL is the TTL of kubernetes answers when the ttl option is absent;
// it is CoreDNS's default.
const DefaultTTL = 5

// Pods modes accepted by the kubernetes pods option, as in CoreDNS.
const (
	PodsDisabled = "disabled"
	PodsInsecure = "insecure"
	PodsVerified = "verified"
)

// Config is a parsed Corefile.
type Config struct {
	// Servers are the server blocks, in file order.
	Servers []Server
}

// Server is one server block of a Corefile.
type Server struct {
	// Zones are the zones of the block's keys: lower case, fully qualified
	// ("cluster.local.", "10.in-addr.arpa.", "."), in file order.
	Zones []string
	// Port is the port all of the block's keys listen on; DefaultPort when
	// they name none.
	Port string
	// Kubernetes is the block's kubernetes directive, nil when it has none.
	Kubernetes *Kubernetes
	// Errors is the errors directive, nil when absent.
	Errors *Errors
	// Log holds the log directive's rules (one per name of each log
	// line), nil when absent.
	Log []LogRule
	// Ready is the address of the readiness endpoint (`ready [ADDR]`,
	// default ":8181"), empty when the block has no ready directive.
	Ready string
	// Forwards are the block's forward directives in file order (a proxy
	// directive counts as one); each takes the names of its FROM zone the
	// handlers before it did not answer, and hands on the rest.
	Forwards []*Forward
	// Cache keeps upstream answers; nil when absent.
	Cache *Cache
	// Hosts, Rewrites, Templates, Chaos, K8sExternal: the directives of
	// the same names (nil when absent); Any and Minimal are flags.
	Hosts       *Hosts
	Rewrites    []*Rewrite
	Templates   []*Template
	Chaos       *Chaos
	K8sExternal *K8sExternal
	DNS64       *DNS64
	Any         bool
	Minimal     bool
	// AutoPath completes search paths server-side; nil when absent.
	AutoPath *AutoPath
	// BufSize caps the EDNS buffer size of UDP replies (bufsize), 0 when
	// absent.
	BufSize int
	// Bind limits the addresses the block listens on; nil for all.
	Bind *Bind
	// Warnings are things an operator should fix that do not stop the
	// block from working (deprecated directives and options), each as
	// "FILE:LINE: message".
	Warnings []string
	// Health is the liveness endpoint and lameduck; nil when absent.
	Health *Health
	// Prometheus is the metrics endpoint; nil when absent.
	Prometheus *Prometheus
	// Pprof is the address of the Go profiling endpoints (/debug/pprof/),
	// empty when absent.
	Pprof string
	// Reload watches the Corefile for changes; nil when absent.
	Reload *Reload
	// Loop detects forwarding loops at start; LoadBalance shuffles address
	// records in answers.
	Loop, LoadBalance bool
	// RateLimit limits UDP responses per client prefix; nil when absent.
	RateLimit *RateLimit
	// File and Line are where the block starts, for messages.
	File string
	Line int
}

// Addr returns the address the server listens on, ":"+Port, in the form
// net.Listen takes.
func (s Server) Addr() string {
	return ":" + s.Port
}

// Kubernetes is the kubernetes directive of a server block.
type Kubernetes struct {
	// Zones are the zones the directive is authoritative for, normalised
	// like Server.Zones. When the directive lists none they are the server
	// block's zones. At least one of them is a forward (non-reverse) zone.
	Zones []string
	// TTL is the TTL of answers: `ttl N`, 0..3600, DefaultTTL when absent.
	TTL uint32
	// Pods is the pods mode: PodsDisabled (the default), PodsInsecure or
	// PodsVerified.
	Pods string
	// Namespaces limits answers to these namespaces; nil means all. Repeated
	// namespaces options add up, as in CoreDNS.
	Namespaces []string
	// EndpointPodNames reports whether endpoint_pod_names is set.
	EndpointPodNames bool
	// Manifests is the path given to the manifests option: a directory of
	// objects to serve instead of (or before) an API server. Empty when
	// absent.
	Manifests string
	// Fallthrough lists the zones whose NXDOMAIN answers are passed on
	// instead of returned: ["."] for a bare fallthrough, the normalised
	// zones when some are given, nil when the option is absent.
	Fallthrough []string
	// Kubeconfig and Context select the API server from a kubeconfig file
	// (`kubeconfig PATH [CONTEXT]`); Endpoint overrides its URL
	// (`endpoint URL`).
	Kubeconfig string
	Context    string
	Endpoint   string
	// Labels is a label selector limiting the Services and EndpointSlices
	// watched (`labels EXPRESSION`).
	Labels string
	// NamespaceLabels publishes only the namespaces whose labels match
	// (`namespace_labels EXPRESSION`); empty for all.
	NamespaceLabels string
	// NoEndpoints drops endpoints (`noendpoints`); IgnoreEmptyService
	// makes ClusterIP Services without a ready endpoint NXDOMAIN
	// (`ignore empty_service`).
	NoEndpoints, IgnoreEmptyService bool
	// TLSCert, TLSKey and TLSCA are `tls CERT KEY CACERT`, for endpoint.
	TLSCert, TLSKey, TLSCA string
	// APIServerQPS, APIServerBurst and APIServerMaxInflight limit the
	// requests to the API server; 0 for the defaults.
	APIServerQPS         float32
	APIServerBurst       int
	APIServerMaxInflight int

	warnings []string // for Server.Warnings, moved there by the parser
}

// FallsThrough reports whether name, a lower-case fully qualified domain
// name, lies in one of the fallthrough zones. A nil Kubernetes never falls
// through.
func (k *Kubernetes) FallsThrough(name string) bool {
	if k == nil || len(k.Fallthrough) == 0 {
		return false
	}
	if !strings.HasSuffix(name, ".") {
		// Tolerate a relative name rather than silently answering false.
		name += "."
	}
	for _, z := range k.Fallthrough {
		if inZone(name, z) {
			return true
		}
	}
	return false
}

// Load reads the Corefile at path and parses it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, data)
}

// Parse parses the Corefile read from r. filename is used in error messages
// and Server.File; an empty one is reported as "Corefile". Placeholders
// {$VAR} and {%VAR%} are replaced from the environment as CoreDNS does;
// import reads files relative to filename's directory.
func Parse(filename string, r io.Reader) (*Config, error) {
	if filename == "" {
		filename = "Corefile"
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	return parse(filename, data)
}

func parse(filename string, data []byte) (*Config, error) {
	toks := lex(filename, data)
	// caddyfile reads the files that import names (relative to the
	// Corefile's directory, globs allowed) and expands snippets, as in
	// CoreDNS.
	blocks, err := caddyfile.Parse(filename, bytes.NewReader(data), nil)
	if err != nil {
		return nil, caddyError(filename, err)
	}
	locs, err := locateBlocks(filename, toks)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		return nil, errorf(filename, 1, "no server blocks")
	}
	if !locationsMatch(locs, blocks) {
		// caddyfile and our walk disagree about the block structure: a
		// top-level import brought in blocks from other files (or unusual
		// environment placeholders). Positions are then approximated from
		// the directives rather than failing.
		locs = approximateLocations(blocks)
	}

	p := parser{filename: filename, served: make(map[string]int)}
	cfg := &Config{}
	for i, b := range blocks {
		srvs, err := p.server(b, locs[i])
		if err != nil {
			return nil, err
		}
		cfg.Servers = append(cfg.Servers, srvs...)
	}
	return cfg, nil
}

// parser carries what has to be checked across server blocks.
type parser struct {
	filename string
	// warnings are the current block's, for Server.Warnings.
	warnings []string
	// served maps "zone port" to the line of the key that claimed it.
	served map[string]int
	// prometheusNames is the names of the first prometheus directive,
	// on prometheusLine: the others must name the metrics alike.
	prometheusNames string
	prometheusLine  int
}

// server parses one server block. A block whose keys name several ports is
// one Server per port, each with the zones of that port and the same
// directives, as CoreDNS serves it.
func (p *parser) server(b caddyfile.ServerBlock, loc blockLoc) ([]Server, error) {
	srv := Server{File: p.filename, Line: loc.line}
	var zonePorts []string // the port of each of srv.Zones
	for i, key := range b.Keys {
		line := loc.keyLines[i]
		zones, port, err := parseKey(key)
		if err != nil {
			return nil, errorf(p.filename, line, "%v", err)
		}
		if i == 0 {
			srv.Port = port
		}
		for _, zone := range zones {
			id := zone + " " + port
			if prev, ok := p.served[id]; ok {
				return nil, errorf(p.filename, line,
					"zone %q on port %s is already defined on line %d", zone, port, prev)
			}
			p.served[id] = line
			srv.Zones = append(srv.Zones, zone)
			zonePorts = append(zonePorts, port)
		}
	}

	// caddyfile groups tokens by directive name, which loses file order;
	// directives are handled in file order so that the first mistake in
	// the file is the one reported.
	var occs []occurrence
	for name, toks := range b.Tokens {
		for _, t := range splitOccurrences(toks) {
			occs = append(occs, occurrence{name: name, tokens: t})
		}
	}
	slices.SortStableFunc(occs, func(a, b occurrence) int {
		return a.tokens[0].Line - b.tokens[0].Line
	})

	var kubernetesLine int
	main := p.filename
	defer func() { p.filename = main }()
	for _, o := range occs {
		line := o.tokens[0].Line
		// A directive imported from another file is reported there.
		p.filename = main
		if f := o.tokens[0].File; f != "" {
			p.filename = f
		}
		if to, ok := aliases[o.name]; ok {
			p.warn(line, "%s is deprecated (removed from CoreDNS in 1.5): read as %s; write %s instead", o.name, to, to)
		}
		if why, ok := ignored[o.name]; ok {
			p.warn(line, "%s is ignored: %s", o.name, why)
			continue
		}
		switch o.name {
		case "kubernetes":
			if kubernetesLine != 0 {
				return nil, errorf(p.filename, line,
					"kubernetes may appear once per server block, it already does on line %d", kubernetesLine)
			}
			kubernetesLine = line
			d := caddyfile.NewDispenserTokens(p.filename, o.tokens)
			k, warns, err := p.kubernetes(&d, srv.Zones)
			if err != nil {
				return nil, err
			}
			srv.Kubernetes = k
			srv.Warnings = append(srv.Warnings, warns...)
		case "ready":
			if srv.Ready != "" {
				return nil, errorf(p.filename, line, "ready may appear once per server block")
			}
			addr, err := p.readyAddr(o)
			if err != nil {
				return nil, err
			}
			srv.Ready = addr
		default:
			if !slices.Contains(Order, o.name) && aliases[o.name] == "" {
				if why, ok := instead[o.name]; ok {
					return nil, errorf(p.filename, line, "%s is not supported: %s", o.name, why)
				}
				return nil, errorf(p.filename, line, "unknown directive %q: %s", o.name, suggest(o.name))
			}
			if err := p.plugin(&srv, o); err != nil {
				return nil, err
			}
		}
	}
	if why := autopathNeeds(&srv); why != "" {
		p.warn(srv.AutoPath.Line, "%s", why)
	}
	if e := srv.K8sExternal; e != nil && srv.Kubernetes == nil {
		return nil, errorf(p.filename, e.Line, "k8s_external needs the kubernetes directive in the same server block: add one")
	}
	srv.Warnings = append(srv.Warnings, p.warnings...)
	p.warnings = nil
	return splitPorts(srv, zonePorts), nil
}

// warn records something an operator should fix that does not stop the
// block from working.
func (p *parser) warn(line int, format string, args ...any) {
	p.warnings = append(p.warnings, (&Error{File: p.filename, Line: line, Msg: fmt.Sprintf(format, args...)}).Error())
}

// splitPorts returns srv as one Server per port of its zones.
func splitPorts(srv Server, ports []string) []Server {
	var out []Server
	for i, port := range ports {
		j := slices.IndexFunc(out, func(s Server) bool { return s.Port == port })
		if j < 0 {
			s := srv
			s.Port, s.Zones = port, nil
			out = append(out, s)
			j = len(out) - 1
		}
		out[j].Zones = append(out[j].Zones, srv.Zones[i])
	}
	return out
}

// plugin parses the directives beyond kubernetes, each at most once per
// server block.
func (p *parser) plugin(srv *Server, o occurrence) error {
	d, err := p.split(o)
	if err != nil {
		return err
	}
	twice := func(set bool) error {
		if set {
			return errorf(p.filename, d.line, "%s may appear once per server block", d.name)
		}
		return nil
	}
	switch d.name {
	case "forward", "proxy":
		var f *Forward
		if f, err = p.forward(d, srv); err == nil {
			for _, prev := range srv.Forwards {
				// A later forward of the same zone gets only what an
				// earlier one hands on (next, next_on_nodata).
				if prev.From == f.From && len(prev.Next) == 0 && !prev.NextOnNodata && len(prev.Except) == 0 {
					srv.Warnings = append(srv.Warnings, fmt.Sprintf("%s:%d: forward: %s is already forwarded on line %d, without next: this forward never gets a query",
						p.filename, d.line, f.From, prev.Line))
				}
			}
			srv.Forwards = append(srv.Forwards, f)
		}
	case "errors":
		if err := twice(srv.Errors != nil); err != nil {
			return err
		}
		srv.Errors, err = p.errors(d)
	case "log":
		var rules []LogRule
		if rules, err = p.log(d); err == nil {
			for _, r := range rules {
				// A rule written twice logs a query once, as in CoreDNS.
				if !slices.ContainsFunc(srv.Log, func(x LogRule) bool {
					return x.Name == r.Name && x.Format == r.Format && slices.Equal(x.Classes, r.Classes)
				}) {
					srv.Log = append(srv.Log, r)
				}
			}
		}
	case "hosts":
		if err := twice(srv.Hosts != nil); err != nil {
			return err
		}
		srv.Hosts, err = p.hosts(d, srv.Zones)
	case "rewrite":
		var r *Rewrite
		if r, err = p.rewrite(d); err == nil {
			srv.Rewrites = append(srv.Rewrites, r)
		}
	case "template":
		var t *Template
		if t, err = p.template(d, srv.Zones); err == nil {
			srv.Templates = append(srv.Templates, t)
		}
	case "chaos":
		if err := twice(srv.Chaos != nil); err != nil {
			return err
		}
		srv.Chaos, err = p.chaos(d)
	case "k8s_external":
		if err := twice(srv.K8sExternal != nil); err != nil {
			return err
		}
		srv.K8sExternal, err = p.k8sExternal(d, srv.Zones)
	case "any":
		if err := twice(srv.Any); err != nil {
			return err
		}
		err, srv.Any = p.flag(d), true
	case "minimal":
		if err := twice(srv.Minimal); err != nil {
			return err
		}
		err, srv.Minimal = p.flag(d), true
	case "dns64":
		if err := twice(srv.DNS64 != nil); err != nil {
			return err
		}
		srv.DNS64, err = p.dns64(d)
	case "autopath":
		if err := twice(srv.AutoPath != nil); err != nil {
			return err
		}
		srv.AutoPath, err = p.autopath(d, srv.Zones)
	case "bufsize":
		if err := twice(srv.BufSize != 0); err != nil {
			return err
		}
		srv.BufSize, err = p.bufsize(d)
	case "bind":
		srv.Bind, err = p.bind(d, srv.Bind)
	case "cache":
		if err := twice(srv.Cache != nil); err != nil {
			return err
		}
		srv.Cache, err = p.cache(d, srv.Zones)
	case "health":
		if err := twice(srv.Health != nil); err != nil {
			return err
		}
		srv.Health, err = p.health(d)
	case "prometheus":
		if err := twice(srv.Prometheus != nil); err != nil {
			return err
		}
		srv.Prometheus, err = p.prometheus(d)
	case "pprof":
		if err := twice(srv.Pprof != ""); err != nil {
			return err
		}
		srv.Pprof, err = p.addrOnly(d, DefaultPprofAddr)
	case "reload":
		if err := twice(srv.Reload != nil); err != nil {
			return err
		}
		srv.Reload, err = p.reload(d)
	case "loop":
		if err := twice(srv.Loop); err != nil {
			return err
		}
		err = p.flag(d)
		srv.Loop = true
	case "loadbalance":
		if err := twice(srv.LoadBalance); err != nil {
			return err
		}
		err = p.flag(d, "round_robin")
		srv.LoadBalance = true
	case "ratelimit":
		if err := twice(srv.RateLimit != nil); err != nil {
			return err
		}
		srv.RateLimit, err = p.ratelimit(d)
	}
	return err
}

// DefaultReadyAddr is where the ready directive listens without an address,
// as in CoreDNS.
const DefaultReadyAddr = ":8181"

// readyAddr parses `ready [ADDR]`.
func (p *parser) readyAddr(o occurrence) (string, error) {
	line := o.tokens[0].Line
	switch len(o.tokens) {
	case 1:
		return DefaultReadyAddr, nil
	case 2:
		addr := o.tokens[1].Text
		if _, port, err := net.SplitHostPort(addr); err != nil || !allDigits(port) {
			return "", errorf(p.filename, line, "ready: %q is not HOST:PORT", addr)
		}
		return addr, nil
	}
	return "", errorf(p.filename, o.tokens[2].Line, "ready: want at most 1 argument (an address), got %q", o.tokens[2].Text)
}

// occurrence is one use of a directive: its name token and everything up to
// the end of its line or of its block.
type occurrence struct {
	name   string
	tokens []caddyfile.Token
}

// noArguments checks a directive that takes neither arguments nor a block
// in this version.
func (p *parser) noArguments(o occurrence) error {
	if len(o.tokens) > 1 {
		t := o.tokens[1]
		return errorf(p.filename, t.Line, "%s takes no arguments in this version, got %q", o.name, t.Text)
	}
	return nil
}

// splitOccurrences cuts the tokens caddyfile collected for one directive
// name into its separate uses. It follows caddyfile's own rule: a use ends
// where a new line starts outside any braces.
func splitOccurrences(toks []caddyfile.Token) [][]caddyfile.Token {
	if len(toks) == 0 {
		return nil
	}
	var out [][]caddyfile.Token
	start, nesting := 0, 0
	for i := 1; i < len(toks); i++ {
		switch {
		case toks[i].Text == "{":
			nesting++
		case nesting == 0 && toks[i-1].Line+strings.Count(toks[i-1].Text, "\n") < toks[i].Line:
			out = append(out, toks[start:i])
			start = i
		case toks[i].Text == "}" && nesting > 0:
			nesting--
		}
	}
	return append(out, toks[start:])
}
