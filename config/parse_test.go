package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
)

// parseTest is one Corefile and what Parse must make of it: a config, or an
// error containing wantErr (which always includes the ":LINE: " part).
type parseTest struct {
	name string
	// in is the Corefile text; file, when set, names a file in testdata
	// to read it from instead.
	in      string
	file    string
	want    *Config
	wantErr string
}

// server builds the expected Server for a block starting on line.
func server(line int, port string, zones ...string) Server {
	return Server{Zones: zones, Port: port, File: "Corefile", Line: line}
}

// with returns s with the kubernetes directive k and the given flags.
func with(s Server, k *Kubernetes, errs, log bool) Server {
	s.Kubernetes = k
	if errs {
		s.Errors = &Errors{}
	}
	if log {
		s.Log = []LogRule{{Name: ".", Format: LogFormat, Classes: []string{"all"}}}
	}
	return s
}

// k8s builds the expected Kubernetes for zones with CoreDNS's defaults;
// tests change the fields they exercise.
func k8s(zones ...string) *Kubernetes {
	return &Kubernetes{Zones: zones, TTL: 5, Pods: "disabled"}
}

func cfg(servers ...Server) *Config { return &Config{Servers: servers} }

// kubeadm is the configuration of kubeadm's Corefile, its block starting on
// line and its forward directive on forwardLine.
func kubeadm(line, forwardLine int) *Config {
	s := with(server(line, "53", "."), set(k8s("cluster.local.", "in-addr.arpa.", "ip6.arpa."), func(k *Kubernetes) {
		k.TTL, k.Pods, k.Fallthrough = 30, "insecure", []string{"in-addr.arpa.", "ip6.arpa."}
	}), true, false)
	s.Health = &Health{Addr: ":8080", Lameduck: 5 * time.Second}
	s.Ready = ":8181"
	s.Prometheus = &Prometheus{Addr: ":9153", Names: NamesSVCDisc}
	s.Forwards = []*Forward{{From: ".", To: []string{"/etc/resolv.conf"}, Policy: "random", MaxConcurrent: 1000,
		MaxFails: 2, HealthCheck: 500 * time.Millisecond, HealthDomain: ".", Expire: 10 * time.Second, ReadTimeout: 2 * time.Second,
		Line: forwardLine}}
	s.Cache = &Cache{Zones: []string{"."}, SuccessCap: 9984, DenialCap: 9984, SuccessTTL: 30 * time.Second, DenialTTL: 30 * time.Second,
		MinSuccessTTL: 5 * time.Second, MinDenial: 5 * time.Second, PrefetchWindow: time.Minute, PrefetchPercent: 10,
		StaleTTL: 30 * time.Second, ServFail: 5 * time.Second}
	s.Reload = &Reload{Interval: 30 * time.Second, Jitter: 15 * time.Second}
	s.Loop, s.LoadBalance = true, true
	return cfg(s)
}

func set(k *Kubernetes, f func(k *Kubernetes)) *Kubernetes {
	f(k)
	return k
}

var parseTests = []parseTest{
	// The resolver's directives.
	{
		name: "kubeadm's whole Corefile",
		file: "kubeadm.Corefile",
		want: kubeadm(1, 13),
	},
	{
		name: "forward with every option",
		in:   ". {\n    forward . 10.0.0.1 [fd00::1]:5353 10.0.0.2:53 {\n        except cluster.local\n        force_tcp\n        policy sequential\n        max_fails 3\n        health_check 2s\n    }\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Forwards = []*Forward{{From: ".", To: []string{"10.0.0.1", "[fd00::1]:5353", "10.0.0.2:53"}, Except: []string{"cluster.local."},
				ForceTCP: true, Policy: "sequential", MaxFails: 3, HealthCheck: 2 * time.Second, HealthDomain: ".", Expire: 10 * time.Second,
				ReadTimeout: 2 * time.Second, Line: 2}}
			return cfg(s)
		}(),
	},
	{
		name: "cache with success, denial (below the 1024 minimum), prefetch and serve_stale",
		in:   ". {\n    cache 600 example.org {\n        success 5000 300 10\n        denial 100 60\n        prefetch 10 2m 20%\n        serve_stale 2h\n    }\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Cache = &Cache{Zones: []string{"example.org."}, SuccessCap: 5000, DenialCap: 1024, SuccessTTL: 300 * time.Second, DenialTTL: 60 * time.Second,
				MinSuccessTTL: 10 * time.Second, MinDenial: 5 * time.Second, Prefetch: 10, PrefetchWindow: 2 * time.Minute, PrefetchPercent: 20,
				ServeStale: 2 * time.Hour, StaleTTL: 30 * time.Second, ServFail: 5 * time.Second}
			return cfg(s)
		}(),
	},
	{name: "forward without upstreams", in: ". {\n    forward .\n}\n", wantErr: "Corefile:2: forward: want FROM and at least one upstream"},
	{name: "forward to a name", in: ". {\n    forward . dns.google\n}\n", wantErr: `Corefile:2: forward: "dns.google" is not an IP address or file`},
	{name: "forward with an unknown policy", in: ". {\n    forward . 1.1.1.1 {\n        policy fastest\n    }\n}\n", wantErr: `Corefile:3: policy: unknown policy "fastest"`},
	{name: "forward with an unknown option", in: ". {\n    forward . 1.1.1.1 {\n        fastest\n    }\n}\n", wantErr: `Corefile:3: forward: unknown option "fastest"`},
	{name: "cache with a bad capacity", in: ". {\n    cache {\n        success many\n    }\n}\n", wantErr: `Corefile:3: success: "many" is not a number`},
	{name: "prefetch percentage out of range", in: ". {\n    cache {\n        prefetch 2 1m 95%\n    }\n}\n", wantErr: `Corefile:3: prefetch: "95%" is not a percentage`},
	{name: "health with a bad lameduck", in: ". {\n    health {\n        lameduck soon\n    }\n}\n", wantErr: `Corefile:3: lameduck: "soon" is not a duration`},
	{
		name: "pprof on its default, loopback address",
		in:   ". {\n    pprof\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Pprof = "localhost:6053"
			return cfg(s)
		}(),
	},
	{
		name: "pprof on an address",
		in:   ". {\n    pprof 127.0.0.1:6060\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Pprof = "127.0.0.1:6060"
			return cfg(s)
		}(),
	},
	{name: "pprof twice", in: ". {\n    pprof\n    pprof\n}\n", wantErr: "Corefile:3: pprof may appear once per server block"},
	{name: "prometheus with a bad address", in: ". {\n    prometheus 9153\n}\n", wantErr: `Corefile:2: prometheus: "9153" is not HOST:PORT`},
	{
		name: "prometheus names coredns exports CoreDNS's metric names",
		in:   ". {\n    prometheus 127.0.0.1:9153 {\n        names coredns\n    }\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Prometheus = &Prometheus{Addr: "127.0.0.1:9153", Names: NamesCoreDNS}
			return cfg(s)
		}(),
	},
	{
		name: "prometheus without an address takes the default and the names",
		in:   ". {\n    prometheus {\n        names svcdisc\n    }\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.Prometheus = &Prometheus{Addr: ":9153", Names: NamesSVCDisc}
			return cfg(s)
		}(),
	},
	{name: "prometheus with unknown names", in: ". {\n    prometheus {\n        names prom\n    }\n}\n",
		wantErr: `Corefile:3: names: want svcdisc (svcdisc_* metrics) or coredns (CoreDNS's names and labels), got "prom"`},
	{name: "prometheus names twice", in: ". {\n    prometheus {\n        names coredns\n        names coredns\n    }\n}\n",
		wantErr: `Corefile:4: names: already set on line 3`},
	{name: "prometheus with an unknown option", in: ". {\n    prometheus {\n        path /m\n    }\n}\n",
		wantErr: `Corefile:3: prometheus: unknown option "path": want names svcdisc|coredns`},
	{name: "prometheus names differ between blocks",
		in:      "a.example {\n    prometheus {\n        names coredns\n    }\n    forward . 192.0.2.1\n}\n. {\n    prometheus\n    forward . 192.0.2.1\n}\n",
		wantErr: `Corefile:8: prometheus: names svcdisc differs from names coredns on line 3: all prometheus directives must use the same names (one registry per process)`},
	{
		name: "prometheus blocks agreeing on names",
		in:   "a.example {\n    prometheus {\n        names coredns\n    }\n}\n. {\n    prometheus :9154 {\n        names coredns\n    }\n}\n",
		want: func() *Config {
			a, b := server(1, "53", "a.example."), server(6, "53", ".")
			a.Prometheus = &Prometheus{Addr: ":9153", Names: NamesCoreDNS}
			b.Prometheus = &Prometheus{Addr: ":9154", Names: NamesCoreDNS}
			return cfg(a, b)
		}(),
	},
	{name: "reload too often", in: ". {\n    reload 1s\n}\n", wantErr: `Corefile:2: reload: "1s" is not a duration of at least 2s`},
	{name: "loadbalance with an unknown mode", in: ". {\n    loadbalance weighted\n}\n", wantErr: `Corefile:2: loadbalance: unexpected argument "weighted"`},
	{name: "loop takes no arguments", in: ". {\n    loop now\n}\n", wantErr: `Corefile:2: loop: unexpected argument "now"`},
	{
		name: "ratelimit with only a rate takes the defaults",
		in:   ". {\n    ratelimit 100\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.RateLimit = &RateLimit{Rate: 100, Burst: 100, IPv4Prefix: 24, IPv6Prefix: 56, Slip: 2, Line: 2}
			return cfg(s)
		}(),
	},
	{
		name: "ratelimit with every option, exempt repeated and unmasked",
		in: ". {\n    ratelimit 50 {\n        burst 200\n        ipv4_prefix 32\n        ipv6_prefix 64\n        slip 0\n" +
			"        exempt 10.1.2.3/8 fd00::/8\n        exempt 192.0.2.7 ::1\n    }\n}\n",
		want: func() *Config {
			s := server(1, "53", ".")
			s.RateLimit = &RateLimit{Rate: 50, Burst: 200, IPv4Prefix: 32, IPv6Prefix: 64, Slip: 0, Line: 2,
				Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
					netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("::1/128")}}
			return cfg(s)
		}(),
	},
	{name: "ratelimit without a rate", in: ". {\n    ratelimit\n}\n", wantErr: "Corefile:2: ratelimit: want RATE (responses per second per client prefix), got 0 arguments"},
	{name: "ratelimit with two rates", in: ". {\n    ratelimit 10 20\n}\n", wantErr: "Corefile:2: ratelimit: want RATE (responses per second per client prefix), got 2 arguments"},
	{name: "ratelimit with a zero rate", in: ". {\n    ratelimit 0\n}\n", wantErr: `Corefile:2: ratelimit: "0" is not a number between 1 and 1000000`},
	{name: "ratelimit with a rate per minute", in: ". {\n    ratelimit 10/m\n}\n", wantErr: `Corefile:2: ratelimit: "10/m" is not a number between 1 and 1000000`},
	{name: "ratelimit with a huge rate", in: ". {\n    ratelimit 99999999999999999999999\n}\n", wantErr: `Corefile:2: ratelimit: "99999999999999999999999" is not a number`},
	{name: "ratelimit with a zero burst", in: ". {\n    ratelimit 10 {\n        burst 0\n    }\n}\n", wantErr: `Corefile:3: burst: "0" is not a number between 1 and 1000000`},
	{name: "ratelimit burst without a value", in: ". {\n    ratelimit 10 {\n        burst\n    }\n}\n", wantErr: "Corefile:3: burst: want 1 argument(s), got 0"},
	{name: "ratelimit with an IPv4 prefix over 32", in: ". {\n    ratelimit 10 {\n        ipv4_prefix 33\n    }\n}\n", wantErr: `Corefile:3: ipv4_prefix: "33" is not a number between 1 and 32`},
	{name: "ratelimit with an IPv6 prefix of 0", in: ". {\n    ratelimit 10 {\n        ipv6_prefix 0\n    }\n}\n", wantErr: `Corefile:3: ipv6_prefix: "0" is not a number between 1 and 128`},
	{name: "ratelimit with a prefix written as a CIDR", in: ". {\n    ratelimit 10 {\n        ipv4_prefix /24\n    }\n}\n", wantErr: `Corefile:3: ipv4_prefix: "/24" is not a number`},
	{name: "ratelimit with a negative slip", in: ". {\n    ratelimit 10 {\n        slip -1\n    }\n}\n", wantErr: `Corefile:3: slip: "-1" is not a number between 0 and 10`},
	{name: "ratelimit with a slip over 10", in: ". {\n    ratelimit 10 {\n        slip 11\n    }\n}\n", wantErr: `Corefile:3: slip: "11" is not a number between 0 and 10`},
	{name: "ratelimit with an option given twice", in: ". {\n    ratelimit 10 {\n        slip 1\n        slip 3\n    }\n}\n", wantErr: "Corefile:4: slip: already set on line 3"},
	{name: "ratelimit exempt without a CIDR", in: ". {\n    ratelimit 10 {\n        exempt\n    }\n}\n", wantErr: "Corefile:3: exempt: want at least one CIDR"},
	{name: "ratelimit exempt with a name", in: ". {\n    ratelimit 10 {\n        exempt 10.0.0.0/8 kube-dns\n    }\n}\n", wantErr: `Corefile:3: exempt: "kube-dns" is not a CIDR or an IP address`},
	{name: "ratelimit exempt with a prefix too long", in: ". {\n    ratelimit 10 {\n        exempt 10.0.0.0/33\n    }\n}\n", wantErr: `Corefile:3: exempt: "10.0.0.0/33" is not a CIDR`},
	{name: "ratelimit exempt with a zoned address", in: ". {\n    ratelimit 10 {\n        exempt fe80::1%eth0\n    }\n}\n", wantErr: `Corefile:3: exempt: "fe80::1%eth0" is not a CIDR`},
	{name: "ratelimit with an unknown option", in: ". {\n    ratelimit 10 {\n        window 15s\n    }\n}\n", wantErr: `Corefile:3: ratelimit: unknown option "window"`},
	{name: "ratelimit twice", in: ". {\n    ratelimit 10\n    ratelimit 20\n}\n", wantErr: "Corefile:3: ratelimit may appear once per server block"},

	// The live source and readiness.
	{
		name: "kubeconfig with a context, endpoint and labels",
		in:   ". {\n    kubernetes cluster.local {\n        kubeconfig /etc/kube.conf admin@prod\n        endpoint https://10.0.0.1:6443\n        labels app=web, tier in (front,back)\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) {
			k.Kubeconfig, k.Context = "/etc/kube.conf", "admin@prod"
			k.Endpoint = "https://10.0.0.1:6443"
			k.Labels = "app=web, tier in (front,back)"
		}), false, false)),
	},
	{
		name: "kubeconfig without a context",
		in:   ". {\n    kubernetes cluster.local {\n        kubeconfig kube.conf\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) { k.Kubeconfig = "kube.conf" }), false, false)),
	},
	{name: "kubeconfig needs a path", in: ". {\n    kubernetes cluster.local {\n        kubeconfig\n    }\n}\n", wantErr: "Corefile:3: kubeconfig: want a path"},
	{name: "endpoint must be a URL", in: ". {\n    kubernetes cluster.local {\n        endpoint 10.0.0.1:6443\n    }\n}\n", wantErr: "Corefile:3: endpoint: \"10.0.0.1:6443\" is not an http(s) URL"},
	{name: "labels must be a selector", in: ". {\n    kubernetes cluster.local {\n        labels app in (x\n    }\n}\n", wantErr: "Corefile:3: labels: \"app in (x\""},
	{name: "ready listens on 8181 by default", in: ". {\n    ready\n}\n",
		want: cfg(func() Server { s := server(1, "53", "."); s.Ready = ":8181"; return s }())},
	{name: "ready takes an address", in: ". {\n    ready 127.0.0.1:9000\n}\n",
		want: cfg(func() Server { s := server(1, "53", "."); s.Ready = "127.0.0.1:9000"; return s }())},
	{name: "ready with a bad address", in: ". {\n    ready nowhere\n}\n", wantErr: "Corefile:2: ready: \"nowhere\" is not HOST:PORT"},
	{name: "ready twice in a block", in: ". {\n    ready\n    ready :9000\n}\n", wantErr: "Corefile:3: ready may appear once"},

	// The built-in configuration.
	{
		name: "default configuration is kubeadm's Corefile",
		in:   Default,
		want: kubeadm(4, 16),
	},

	// Server block keys.
	{
		name: "bare root zone listens on port 53",
		in:   ". {\n}\n",
		want: cfg(server(1, "53", ".")),
	},
	{
		name: "missing zone means the root",
		in:   ":1053 {\n}\n",
		want: cfg(server(1, "1053", ".")),
	},
	{
		name: "dns scheme is accepted and dropped",
		in:   "dns://cluster.local:53 {\n}\n",
		want: cfg(server(1, "53", "cluster.local.")),
	},
	{
		name: "dns scheme alone means the root on port 53",
		in:   "dns:// {\n}\n",
		want: cfg(server(1, "53", ".")),
	},
	{
		name: "zones are lower-cased and fully qualified",
		in:   "Cluster.LOCAL example.org. {\n}\n",
		want: cfg(server(1, "53", "cluster.local.", "example.org.")),
	},
	{
		name: "leading zeros in a port are dropped",
		in:   "example.org:01053 {\n}\n",
		want: cfg(server(1, "1053", "example.org.")),
	},
	{
		name: "keys may share a port",
		in:   "a.example:1053 b.example:1053 {\n}\n",
		want: cfg(server(1, "1053", "a.example.", "b.example.")),
	},
	{
		name: "trailing comma continues the keys on the next line",
		in:   "\n\na.example,\n b.example {\n}\n",
		want: cfg(server(3, "53", "a.example.", "b.example.")),
	},
	{
		name: "octet-aligned IPv4 CIDR keys become in-addr.arpa zones",
		in:   "10.0.0.0/8 172.16.0.0/16 192.168.1.0/24 192.168.1.7/32 0.0.0.0/0 {\n}\n",
		want: cfg(server(1, "53", "10.in-addr.arpa.", "16.172.in-addr.arpa.", "1.168.192.in-addr.arpa.",
			"7.1.168.192.in-addr.arpa.", "in-addr.arpa.")),
	},
	{
		name: "host bits of a CIDR key are ignored",
		in:   "10.1.2.3/8 {\n}\n",
		want: cfg(server(1, "53", "10.in-addr.arpa.")),
	},
	{
		name: "nibble-aligned IPv6 CIDR keys become ip6.arpa zones",
		in:   "fd00::/8 2001:DB8::/32 fd00::/12 {\n}\n",
		want: cfg(server(1, "53", "d.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.", "0.d.f.ip6.arpa.")),
	},
	{
		name: "CIDR keys may carry a port and a scheme",
		in:   "dns://10.0.0.0/8:1053 fd00::/8:1053 {\n}\n",
		want: cfg(server(1, "1053", "10.in-addr.arpa.", "d.f.ip6.arpa.")),
	},
	{
		name: "same zone on different ports is two servers",
		in:   ". {\n}\n.:1053 {\n}\n",
		want: cfg(server(1, "53", "."), server(3, "1053", ".")),
	},
	{
		name: "block without braces takes the rest of the file",
		in:   ".:53\nerrors\nlog\n",
		want: cfg(with(server(1, "53", "."), nil, true, true)),
	},
	{
		name: "key alone is a server without directives",
		in:   "# just a key\nexample.org",
		want: cfg(server(2, "53", "example.org.")),
	},
	{
		name: "multi-server file",
		file: "multi-server.Corefile",
		want: cfg(
			with(server(2, "53", "cluster.local.", "in-addr.arpa."), k8s("cluster.local.", "in-addr.arpa."), false, false),
			with(server(7, "1053", "."), nil, false, true),
		),
	},

	// Directives.
	{
		name: "errors and log switch on their flags",
		in:   ". {\n    log\n    errors\n}\n",
		want: cfg(with(server(1, "53", "."), nil, true, true)),
	},
	{
		name: "log may be repeated",
		in:   ". {\n    log\n    log\n}\n",
		want: cfg(with(server(1, "53", "."), nil, false, true)),
	},

	// The kubernetes directive.
	{
		name: "kubernetes without zones takes the server block's zones",
		in:   "cluster.local 10.0.0.0/8 {\n    kubernetes\n}\n",
		want: cfg(with(server(1, "53", "cluster.local.", "10.in-addr.arpa."),
			k8s("cluster.local.", "10.in-addr.arpa."), false, false)),
	},
	{
		name: "kubernetes zones may lie below the server block's zones",
		in:   ". {\n    kubernetes Cluster.Local 10.0.0.0/8\n}\n",
		want: cfg(with(server(1, "53", "."), k8s("cluster.local.", "10.in-addr.arpa."), false, false)),
	},
	{
		name: "kubernetes zone may equal a server zone",
		in:   "cluster.local {\n    kubernetes cluster.local.\n}\n",
		want: cfg(with(server(1, "53", "cluster.local."), k8s("cluster.local."), false, false)),
	},
	{
		name: "kubernetes with an empty block keeps the defaults",
		in:   ". {\n    kubernetes cluster.local {\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), k8s("cluster.local."), false, false)),
	},
	{
		name: "every kubernetes option",
		file: "all-options.Corefile",
		want: cfg(with(server(2, "5353", "cluster.local.", "10.in-addr.arpa.", "d.f.ip6.arpa."),
			set(k8s("cluster.local.", "10.in-addr.arpa.", "d.f.ip6.arpa."), func(k *Kubernetes) {
				k.TTL = 0
				k.Pods = "verified"
				k.Namespaces = []string{"default", "kube-system", "monitoring"}
				k.EndpointPodNames = true
				k.Manifests = "/etc/svcdisc/manifests"
				k.Fallthrough = []string{"."}
			}), true, true)),
	},
	{
		name: "ttl accepts its upper bound",
		in:   ". {\n    kubernetes cluster.local {\n        ttl 3600\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) { k.TTL = 3600 }), false, false)),
	},
	{
		name: "pods disabled may be spelled out",
		in:   ". {\n    kubernetes cluster.local {\n        pods disabled\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), k8s("cluster.local."), false, false)),
	},
	{
		name: "bare fallthrough covers every zone",
		in:   ". {\n    kubernetes cluster.local {\n        fallthrough\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) {
			k.Fallthrough = []string{"."}
		}), false, false)),
	},
	{
		name: "fallthrough zones are normalised",
		in:   ". {\n    kubernetes cluster.local {\n        fallthrough IN-ADDR.ARPA 10.0.0.0/8 example.org.\n    }\n}\n",
		want: cfg(with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) {
			k.Fallthrough = []string{"in-addr.arpa.", "10.in-addr.arpa.", "example.org."}
		}), false, false)),
	},

	{
		name: "kubernetes upstream is accepted with a warning",
		in:   ". {\n    kubernetes cluster.local {\n        pods insecure\n        upstream 8.8.8.8\n    }\n}\n",
		want: cfg(func() Server {
			s := with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) { k.Pods = "insecure" }), false, false)
			s.Warnings = []string{"Corefile:4: kubernetes: upstream is deprecated (removed from CoreDNS in 1.7) and ignored: " +
				"ExternalName targets are resolved through the server block (forward), as in CoreDNS; remove it"}
			return s
		}()),
	},
	{
		name: "kubernetes options of CoreDNS 1.14",
		in: ". {\n    kubernetes cluster.local {\n        noendpoints\n        ignore empty_service\n        namespace_labels team in (a, b)\n" +
			"        endpoint https://10.0.0.1:6443\n        tls c.pem k.pem ca.pem\n        apiserver_qps 20.5\n        apiserver_burst 40\n" +
			"        apiserver_max_inflight 8\n        startup_timeout 10s\n    }\n}\n",
		want: cfg(func() Server {
			s := with(server(1, "53", "."), set(k8s("cluster.local."), func(k *Kubernetes) {
				k.NoEndpoints, k.IgnoreEmptyService, k.NamespaceLabels = true, true, "team in (a, b)"
				k.Endpoint, k.TLSCert, k.TLSKey, k.TLSCA = "https://10.0.0.1:6443", "c.pem", "k.pem", "ca.pem"
				k.APIServerQPS, k.APIServerBurst, k.APIServerMaxInflight = 20.5, 40, 8
			}), false, false)
			s.Warnings = []string{"Corefile:11: kubernetes: startup_timeout is ignored: svcdisc answers the cluster zones " +
				"with SERVFAIL, and reports not ready, until it has the whole cluster; remove it"}
			return s
		}()),
	},
	{
		name: "k8s_external with defaults takes the block's zones",
		in:   "example.org cluster.local {\n    kubernetes cluster.local\n    k8s_external\n}\n",
		want: cfg(func() Server {
			s := with(server(1, "53", "example.org.", "cluster.local."), k8s("cluster.local."), false, false)
			s.K8sExternal = &K8sExternal{Zones: []string{"example.org.", "cluster.local."}, Apex: "dns", TTL: 5, Line: 3}
			return s
		}()),
	},
	{
		name: "k8s_external with every option, before kubernetes",
		in:   ". {\n    k8s_external Example.org example.net {\n        apex NS\n        ttl 60\n        headless\n        fallthrough example.net\n    }\n    kubernetes cluster.local\n}\n",
		want: cfg(func() Server {
			s := with(server(1, "53", "."), k8s("cluster.local."), false, false)
			s.K8sExternal = &K8sExternal{Zones: []string{"example.org.", "example.net."}, Apex: "ns", TTL: 60, Headless: true,
				Fallthrough: []string{"example.net."}, Line: 2}
			return s
		}()),
	},

	// Errors, each with the line it is about.
	{name: "empty file", in: "", wantErr: "Corefile:1: no server blocks"},
	{name: "file of comments", in: "# nothing\n# here\n", wantErr: "Corefile:1: no server blocks"},
	{name: "unknown directive", file: "bad-directive.Corefile", wantErr: `Corefile:7: whoami is not supported: remove it`},
	{name: "unknown directive in a later block", in: ". {\n}\n\nexample.org {\n    errors\n    frobnicate 30\n}\n", wantErr: `Corefile:6: unknown directive "frobnicate"`},
	{name: "first mistake in the file is reported", in: ". {\n    log\n    whoami x\n    errors x\n    forward .\n}\n", wantErr: `Corefile:3: whoami is not supported`},
	{name: "errors with an argument", in: ". {\n    errors stdout\n}\n", wantErr: `Corefile:2: errors: takes no arguments, got "stdout"`},
	{name: "errors with a bad consolidate level", in: ". {\n    errors {\n        consolidate 5m \".*\" loud\n    }\n}\n", wantErr: `Corefile:3: consolidate: unknown level "loud"`},
	{name: "log with an unknown class", in: ". {\n\n    log . {\n        class errors\n    }\n}\n", wantErr: `Corefile:4: class: unknown class "errors"`},
	{name: "errors twice", in: ". {\n    errors\n    errors\n}\n", wantErr: "Corefile:3: errors may appear once per server block"},
	{name: "kubernetes twice", in: ". {\n    kubernetes cluster.local\n    log\n    kubernetes cluster.local\n}\n", wantErr: "Corefile:4: kubernetes may appear once per server block, it already does on line 2"},
	{name: "kubernetes unknown option", in: ". {\n    kubernetes cluster.local {\n        pods insecure\n        frobnicate\n    }\n}\n", wantErr: `Corefile:4: kubernetes: unknown option "frobnicate"`},
	{name: "kubernetes multicluster is refused", in: ". {\n    kubernetes cluster.local clusterset.local {\n        multicluster clusterset.local\n    }\n}\n", wantErr: `Corefile:3: kubernetes: multicluster is not supported: svcdisc does not serve Multi-Cluster Services`},
	{name: "kubernetes zonal is refused", in: ". {\n    kubernetes cluster.local {\n        zonal\n    }\n}\n", wantErr: `Corefile:3: kubernetes: zonal is not supported: `},
	{name: "kubernetes transfer is refused", in: ". {\n    kubernetes cluster.local {\n        transfer to *\n    }\n}\n", wantErr: `Corefile:3: kubernetes: transfer is not supported: zone transfers are not a kubernetes option since CoreDNS 1.8`},
	{name: "ignore without empty_service", in: ". {\n    kubernetes cluster.local {\n        ignore\n    }\n}\n", wantErr: `Corefile:3: ignore: want empty_service, got ""`},
	{name: "ignore something else", in: ". {\n    kubernetes cluster.local {\n        ignore full_service\n    }\n}\n", wantErr: `Corefile:3: ignore: want empty_service, got "full_service"`},
	{name: "noendpoints with an argument", in: ". {\n    kubernetes cluster.local {\n        noendpoints yes\n    }\n}\n", wantErr: "Corefile:3: noendpoints: want no arguments, got 1"},
	{name: "namespace_labels without selector", in: ". {\n    kubernetes cluster.local {\n        namespace_labels\n    }\n}\n", wantErr: "Corefile:3: namespace_labels: want a label selector"},
	{name: "namespace_labels bad selector", in: ". {\n    kubernetes cluster.local {\n        namespace_labels a in (b\n    }\n}\n", wantErr: `Corefile:3: namespace_labels: "a in (b"`},
	{name: "namespaces and namespace_labels together", in: ". {\n    kubernetes cluster.local {\n        namespaces a\n        namespace_labels team=x\n    }\n}\n", wantErr: "Corefile:2: kubernetes: namespaces and namespace_labels cannot both be set"},
	{name: "tls with two files", in: ". {\n    kubernetes cluster.local {\n        tls a b\n    }\n}\n", wantErr: "Corefile:3: tls: want CERT KEY CACERT, got 2 arguments"},
	{name: "apiserver_qps not a number", in: ". {\n    kubernetes cluster.local {\n        apiserver_qps fast\n    }\n}\n", wantErr: `Corefile:3: apiserver_qps: "fast" is not a number`},
	{name: "apiserver_burst negative", in: ". {\n    kubernetes cluster.local {\n        apiserver_burst -1\n    }\n}\n", wantErr: `Corefile:3: apiserver_burst: "-1" is not a number`},
	{name: "startup_timeout not a duration", in: ". {\n    kubernetes cluster.local {\n        startup_timeout 5\n    }\n}\n", wantErr: `Corefile:3: startup_timeout: "5" is not a duration`},
	{name: "k8s_external without kubernetes", in: ". {\n    k8s_external example.org\n    forward . 1.1.1.1\n}\n", wantErr: "Corefile:2: k8s_external needs the kubernetes directive in the same server block"},
	{name: "k8s_external unknown option", in: ". {\n    kubernetes cluster.local\n    k8s_external example.org {\n        wildcard\n    }\n}\n", wantErr: `Corefile:4: k8s_external: unknown option "wildcard"`},
	{name: "k8s_external bad ttl", in: ". {\n    kubernetes cluster.local\n    k8s_external example.org {\n        ttl 3601\n    }\n}\n", wantErr: `Corefile:4: ttl: "3601" is not a number between 0 and 3600`},
	{name: "k8s_external apex of two labels", in: ". {\n    kubernetes cluster.local\n    k8s_external example.org {\n        apex a.b\n    }\n}\n", wantErr: `Corefile:4: apex: "a.b" is not one DNS label`},
	{name: "k8s_external zone outside the block", in: "cluster.local {\n    kubernetes\n    k8s_external example.org\n}\n", wantErr: `Corefile:3: k8s_external: zone "example.org." is not inside the server block's zones`},
	{name: "k8s_external twice", in: ". {\n    kubernetes cluster.local\n    k8s_external example.org\n    k8s_external example.net\n}\n", wantErr: "Corefile:4: k8s_external may appear once per server block"},
	{name: "ttl not a number", in: ". {\n    kubernetes cluster.local {\n        pods insecure\n        ttl abc\n    }\n}\n", wantErr: `Corefile:4: ttl: "abc" is not a number between 0 and 3600`},
	{name: "ttl negative", in: ". {\n    kubernetes cluster.local {\n        ttl -1\n    }\n}\n", wantErr: `Corefile:3: ttl: "-1" is not a number between 0 and 3600`},
	{name: "ttl with a sign", in: ". {\n    kubernetes cluster.local {\n        ttl +5\n    }\n}\n", wantErr: `Corefile:3: ttl: "+5" is not a number`},
	{name: "ttl too large", in: ". {\n    kubernetes cluster.local {\n        ttl 3601\n    }\n}\n", wantErr: `Corefile:3: ttl: "3601" is not a number between 0 and 3600`},
	{name: "ttl huge", in: ". {\n    kubernetes cluster.local {\n        ttl 99999999999999999999999\n    }\n}\n", wantErr: `Corefile:3: ttl: "99999999999999999999999" is not a number`},
	{name: "ttl without value", in: ". {\n    kubernetes cluster.local {\n        ttl\n    }\n}\n", wantErr: "Corefile:3: ttl: want 1 argument, got 0"},
	{name: "ttl with two values", in: ". {\n    kubernetes cluster.local {\n        ttl 5 10\n    }\n}\n", wantErr: "Corefile:3: ttl: want 1 argument, got 2"},
	{name: "ttl given twice", in: ". {\n    kubernetes cluster.local {\n        ttl 5\n        ttl 10\n    }\n}\n", wantErr: "Corefile:4: ttl: already set on line 3"},
	{name: "pods without mode", in: ". {\n    kubernetes cluster.local {\n        pods\n    }\n}\n", wantErr: "Corefile:3: pods: want 1 argument"},
	{name: "pods unknown mode", in: ". {\n    kubernetes cluster.local {\n        pods secure\n    }\n}\n", wantErr: `Corefile:3: pods: unknown mode "secure": want disabled, insecure or verified`},
	{name: "namespaces without names", in: ". {\n    kubernetes cluster.local {\n        namespaces\n    }\n}\n", wantErr: "Corefile:3: namespaces: want at least 1 argument"},
	{name: "endpoint_pod_names with an argument", in: ". {\n    kubernetes cluster.local {\n        endpoint_pod_names yes\n    }\n}\n", wantErr: "Corefile:3: endpoint_pod_names: want no arguments, got 1"},
	{name: "manifests without path", in: ". {\n    kubernetes cluster.local {\n        manifests\n    }\n}\n", wantErr: "Corefile:3: manifests: want 1 argument (a path), got 0"},
	{name: "manifests with two paths", in: ". {\n    kubernetes cluster.local {\n        manifests /a /b\n    }\n}\n", wantErr: "Corefile:3: manifests: want 1 argument (a path), got 2"},
	{name: "fallthrough with a bad zone", in: ". {\n    kubernetes cluster.local {\n        fallthrough 10.0.0.0/12\n    }\n}\n", wantErr: `Corefile:3: fallthrough: "10.0.0.0/12": an IPv4 reverse zone needs a prefix length that is a multiple of 8`},
	{name: "option with a block", in: ". {\n    kubernetes cluster.local {\n        pods insecure {\n        }\n    }\n}\n", wantErr: "Corefile:3: pods: options take no block"},
	{name: "closing brace after an option", in: ". {\n    kubernetes cluster.local {\n        pods insecure }\n}\n", wantErr: `Corefile:3: pods: "}" must be on a line of its own`},
	{name: "kubernetes block opened on the next line", in: ". {\n    kubernetes cluster.local\n    {\n        pods insecure\n    }\n}\n", wantErr: `Corefile:3: kubernetes: "{" must be on the same line as kubernetes`},
	{name: "words after the kubernetes block", in: ". {\n    kubernetes cluster.local {\n    } extra\n}\n", wantErr: `Corefile:3: kubernetes: unexpected "extra"`},
	{name: "kubernetes invalid zone", in: ". {\n    kubernetes cluster..local\n}\n", wantErr: `Corefile:2: kubernetes: "cluster..local" is not a valid zone name`},
	{name: "kubernetes only reverse zones", in: ". {\n    kubernetes in-addr.arpa ip6.arpa\n}\n", wantErr: "Corefile:2: kubernetes: at least one zone must be a forward (non-reverse) zone"},
	{name: "kubernetes in a reverse-only block", in: "10.0.0.0/8 {\n    kubernetes\n}\n", wantErr: "Corefile:2: kubernetes: at least one zone must be a forward (non-reverse) zone, got 10.in-addr.arpa."},
	{name: "tls scheme", in: "tls://.:853 {\n}\n", wantErr: `Corefile:1: unsupported scheme "tls://"`},
	{name: "https scheme", in: ". {\n}\nhttps://. {\n}\n", wantErr: `Corefile:3: unsupported scheme "https://"`},
	{name: "grpc scheme", in: "grpc://. {\n}\n", wantErr: `Corefile:1: unsupported scheme "grpc://"`},
	{name: "quic scheme", in: "quic://. {\n}\n", wantErr: `Corefile:1: unsupported scheme "quic://"`},
	{name: "port not a number", in: "example.org:dns {\n}\n", wantErr: `Corefile:1: "example.org:dns": port "dns" is not a number between 1 and 65535`},
	{name: "port zero", in: ".:0 {\n}\n", wantErr: `Corefile:1: ".:0": port "0" is not a number between 1 and 65535`},
	{name: "port too large", in: ".:65536 {\n}\n", wantErr: `Corefile:1: ".:65536": port "65536" is not a number`},
	{name: "port missing after colon", in: "example.org: {\n}\n", wantErr: `Corefile:1: "example.org:": port "" is not a number`},
	{name: "two blocks with the same zone and port", in: ".:53 {\n    errors\n}\n\n. {\n    log\n}\n", wantErr: `Corefile:5: zone "." on port 53 is already defined on line 1`},
	{name: "same zone spelled differently", in: "cluster.local {\n}\nCLUSTER.LOCAL.:53 {\n}\n", wantErr: `Corefile:3: zone "cluster.local." on port 53 is already defined on line 1`},
	{name: "same network spelled differently", in: "10.0.0.0/8 {\n}\n10.in-addr.arpa {\n}\n", wantErr: `Corefile:3: zone "10.in-addr.arpa." on port 53 is already defined on line 1`},
	{name: "same zone twice in a block", in: "a.example a.example {\n}\n", wantErr: `Corefile:1: zone "a.example." on port 53 is already defined on line 1`},
	{name: "malformed CIDR", in: "10.0.0/8 {\n}\n", wantErr: `Corefile:1: "10.0.0/8" is not a valid zone name or CIDR`},
	{name: "invalid zone name", in: "ex!ample.org {\n}\n", wantErr: `Corefile:1: "ex!ample.org" is not a valid zone name`},
	{name: "label too long", in: strings.Repeat("a", 64) + ".org {\n}\n", wantErr: `Corefile:1: "` + strings.Repeat("a", 64) + `.org" is not a valid zone name`},
	{name: "empty key", in: "\"\", example.org {\n}\n", wantErr: `Corefile:1: empty server block key`},
	{name: "unclosed block", in: ". {\n    errors\n", wantErr: "Corefile:2: unexpected token 'errors', expecting '}'"},
	{name: "unclosed kubernetes block", in: ". {\n    kubernetes {\n        ttl 5\n}\n", wantErr: `Corefile:1: server block is not closed: missing "}"`},
	{name: "stray closing brace", in: ". {\n    errors }\n}\n", wantErr: "Corefile:2: unexpected '}' because no matching opening brace"},
	{name: "unclosed directive block", in: ". {\n    kubernetes {\n        ttl 5\n", wantErr: "Corefile:3: unexpected EOF"},
	{name: "extra closing brace", in: ". {\n}\n}\n", wantErr: `Corefile:3: unexpected "}": no block is open`},
	{name: "closing brace of a block without braces", in: ".\nerrors\n}\n", wantErr: `Corefile:3: unexpected "}": no block is open`},
	{name: "block without a key", in: "# a\n{\n    errors\n}\n", wantErr: `Corefile:2: server block has no zone or port before "{"`},
	{name: "trailing comma at the end of the file", in: "a.example,\n", wantErr: "Corefile:1: unexpected EOF"},
	{name: "import of a missing file", in: ". {\n    errors\n    import common.conf\n}\n", wantErr: "Corefile:3: file to import not found: common.conf"},
}

// wellFormed is what every error message must look like: the file, the
// line, then a lower-case explanation.
var wellFormed = regexp.MustCompile(`^Corefile:[1-9][0-9]*: [^A-Z]`)

func (tt parseTest) input(t testing.TB) string {
	if tt.file == "" {
		return tt.in
	}
	data, err := os.ReadFile(filepath.Join("testdata", tt.file))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("Corefile", strings.NewReader(tt.input(t)))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded with %+v, want error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse error = %q, want it to contain %q", err, tt.wantErr)
				}
				if !wellFormed.MatchString(err.Error()) {
					t.Errorf("Parse error %q is not of the form FILE:LINE: lower-case message", err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("Parse error %q is a %T, want *Error", err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse got\n%s\nwant\n%s", dump(got), dump(tt.want))
			}
		})
	}
}

// dump prints a Config with its Kubernetes pointers followed.
func dump(c *Config) string {
	var b strings.Builder
	for _, s := range c.Servers {
		k := s.Kubernetes
		s.Kubernetes = nil
		b.WriteString("  server ")
		b.WriteString(strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf("%+v", s), "Kubernetes:<nil> ", "")))
		if k != nil {
			b.WriteString("\n    kubernetes ")
			b.WriteString(fmt.Sprintf("%+v", *k))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestParseExpandsEnvironmentInKeys(t *testing.T) {
	t.Setenv("SVCDISC_TEST_ZONE", "Example.ORG")
	got, err := Parse("Corefile", strings.NewReader("{$SVCDISC_TEST_ZONE}:1053 {\n    log\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := cfg(with(server(1, "1053", "example.org."), nil, false, true))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse got\n%s\nwant\n%s", dump(got), dump(want))
	}
}

func TestParseNamesItsFileInErrors(t *testing.T) {
	_, err := Parse("/etc/svcdisc/Corefile", strings.NewReader(". {\n    whoami\n}\n"))
	want := `/etc/svcdisc/Corefile:2: whoami is not supported: remove it: svcdisc does not answer whoami`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestParseNamesSyntaxErrorsLikeOthers(t *testing.T) {
	_, err := Parse("my - Corefile", strings.NewReader(". {\n    errors\n"))
	want := "my - Corefile:2: unexpected token 'errors', expecting '}'"
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestParseWithoutFilenameSaysCorefile(t *testing.T) {
	c, err := Parse("", strings.NewReader(". {\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Servers[0].File != "Corefile" {
		t.Errorf("File = %q, want Corefile", c.Servers[0].File)
	}
}

func TestLoadReadsAndNamesTheFile(t *testing.T) {
	path := filepath.Join("testdata", "multi-server.Corefile")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Servers) != 2 || c.Servers[1].File != path || c.Servers[1].Line != 7 {
		t.Errorf("Load got\n%s", dump(c))
	}

	_, err = Load(filepath.Join("testdata", "bad-directive.Corefile"))
	want := filepath.Join("testdata", "bad-directive.Corefile") + `:7: whoami is not supported: remove it: svcdisc does not answer whoami`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
}

func TestLoadMissingFileFails(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load error = %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestDefaultMatchesCorefileExample(t *testing.T) {
	data, err := os.ReadFile("../Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != Default {
		t.Errorf("../Corefile.example differs from Default:\n%s\nwant:\n%s", data, Default)
	}
}

func TestAddrIsColonPort(t *testing.T) {
	if got := (Server{Port: "1053"}).Addr(); got != ":1053" {
		t.Errorf("Addr = %q, want :1053", got)
	}
}

func TestFallsThrough(t *testing.T) {
	reverse := &Kubernetes{Fallthrough: []string{"in-addr.arpa.", "ip6.arpa."}}
	all := &Kubernetes{Fallthrough: []string{"."}}
	none := &Kubernetes{}
	tests := []struct {
		name  string
		k     *Kubernetes
		qname string
		want  bool
	}{
		{"zone apex falls through", reverse, "in-addr.arpa.", true},
		{"name below a zone falls through", reverse, "1.0.0.10.in-addr.arpa.", true},
		{"name outside the zones does not", reverse, "svc.cluster.local.", false},
		{"suffix that is not a label boundary does not", reverse, "xin-addr.arpa.", false},
		{"parent of a zone does not", reverse, "arpa.", false},
		{"root covers everything", all, "anything.example.", true},
		{"root covers the root", all, ".", true},
		{"no fallthrough option never falls through", none, "in-addr.arpa.", false},
		{"nil kubernetes never falls through", nil, "in-addr.arpa.", false},
		{"upper case still matches", reverse, "1.0.0.10.IN-ADDR.ARPA.", true},
		{"relative name is taken as fully qualified", reverse, "1.0.0.10.in-addr.arpa", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.k.FallsThrough(tt.qname); got != tt.want {
				t.Errorf("FallsThrough(%q) = %v, want %v", tt.qname, got, tt.want)
			}
		})
	}
}

// When caddyfile and the block walk disagree, positions fall back to each
// block's first directive rather than failing the parse.
func TestApproximateLocationsUseFirstDirective(t *testing.T) {
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(". {\n}\nexample.org a.example {\n\n    log\n    errors\n}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := approximateLocations(blocks)
	want := []blockLoc{{line: 1, keyLines: []int{1}}, {line: 5, keyLines: []int{5, 5}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("approximateLocations = %+v, want %+v", got, want)
	}
}
