package config

import "fmt"

// Order lists every directive svcdisc knows, in the order their handlers
// run for a query, whatever order a Corefile writes them in. It follows
// CoreDNS's plugin.cfg, so a Corefile means the same thing to both;
// ratelimit, svcdisc's own, limits a whole listen address before a query is
// parsed and so has no place in a chain.
var Order = []string{
	"reload",
	"bufsize",
	"bind",
	"ready",
	"health",
	"pprof",
	"prometheus",
	"errors",
	"log",
	"dns64",
	"any",
	"chaos",
	"loadbalance",
	"cache",
	"rewrite",
	"autopath",
	"minimal",
	"template",
	"hosts",
	"k8s_external",
	"kubernetes",
	"loop",
	"forward",
	"ratelimit",
}

// aliases are old names of directives that CoreDNS once accepted, taken as
// the directive they stand for (with a warning at start).
var aliases = map[string]string{
	// proxy was removed in CoreDNS 1.5; its common options are forward's.
	"proxy": "forward",
}

// ignored are directives that load with a warning and do nothing: what
// they did is gone from CoreDNS, or answers stay correct without them.
var ignored = map[string]string{
	"federation": "kube-federation v1 and this directive were removed (CoreDNS 1.7); its names are not answered",
}

// instead says, for CoreDNS directives svcdisc does not implement, what to
// do instead; an error names it with the file and line.
var instead = map[string]string{
	"file":        "svcdisc serves no zone files: keep CoreDNS (or any authoritative server) for that zone and forward to it",
	"auto":        "svcdisc serves no zone files: keep CoreDNS for those zones and forward to it",
	"secondary":   "svcdisc does not transfer zones in: keep CoreDNS for that zone and forward to it",
	"etcd":        "svcdisc does not read etcd (SkyDNS) records: keep CoreDNS for that zone and forward to it",
	"route53":     "svcdisc does not read cloud DNS zones: forward that zone to the provider's resolver",
	"azure":       "svcdisc does not read cloud DNS zones: forward that zone to the provider's resolver",
	"clouddns":    "svcdisc does not read cloud DNS zones: forward that zone to the provider's resolver",
	"dnssec":      "svcdisc does not sign answers: remove it (cluster zones are not signed by CoreDNS's defaults either)",
	"sign":        "svcdisc does not sign zones: remove it",
	"transfer":    "svcdisc refuses zone transfers of the cluster zones: remove it",
	"grpc":        "use forward with DNS, DNS over TLS (tls://) upstreams instead",
	"dnstap":      "svcdisc has no dnstap output: use log for a query log",
	"trace":       "svcdisc has no tracing: use log and the prometheus metrics",
	"acl":         "svcdisc has no ACLs yet: restrict clients with a NetworkPolicy, or ratelimit",
	"view":        "svcdisc has no views: run a separate server block per client set on its own address",
	"dns64":       "svcdisc does not synthesize AAAA records: remove it, or keep CoreDNS for it",
	"tls":         "svcdisc serves plain DNS only: terminate DNS over TLS in front of it",
	"quic":        "svcdisc serves plain DNS only",
	"grpc_server": "svcdisc serves plain DNS only",
	"https":       "svcdisc serves plain DNS only",
	"tsig":        "svcdisc does not verify TSIG: remove it",
	"geoip":       "svcdisc has no GeoIP data: remove it",
	"metadata":    "remove it: no svcdisc directive reads metadata",
	"header":      "remove it: svcdisc sets the RA and AA bits as CoreDNS's defaults do",
	"whoami":      "remove it: svcdisc does not answer whoami",
	"erratic":     "remove it: a testing plugin",
	"debug":       "remove it: a CoreDNS development aid",
	"nsid":        "remove it: svcdisc does not add NSID",
	"local":       "remove it: svcdisc answers localhost names from the forward upstream",
	"root":        "remove it: svcdisc reads no zone files, so needs no root directory",
	"cancel":      "remove it: svcdisc bounds every forwarded query by a 2 s deadline",
	"timeouts":    "remove it: svcdisc's TCP read (5 s) and idle (10 s) timeouts are fixed",
	"multisocket": "remove it: svcdisc reads UDP with one socket per CPU already",
	"on":          "remove it: svcdisc runs no commands on events",
	"k8s_event":   "remove it: svcdisc does not report Kubernetes events",
}

// suggest names the known directive closest to an unknown one, for a typo,
// or says where the list is.
func suggest(name string) string {
	best, bestDist := "", 3
	for _, known := range Order {
		if d := editDistance(name, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %s?", best)
	}
	return "the directives svcdisc knows are listed in its README (Configuration)"
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
