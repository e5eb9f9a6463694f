package config

import (
	"fmt"
	"net/url"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// kubernetes parses one kubernetes directive:
//
//	kubernetes [ZONES...] {
//	    ttl N                            (0..3600, default 5)
//	    pods disabled|insecure|verified  (default disabled)
//	    namespaces NS...                 (default all; repeatable)
//	    namespace_labels EXPRESSION      (default all namespaces)
//	    labels EXPRESSION                (default all objects)
//	    endpoint_pod_names
//	    noendpoints
//	    ignore empty_service
//	    manifests PATH
//	    fallthrough [ZONES...]
//	    kubeconfig PATH [CONTEXT]
//	    endpoint URL
//	    tls CERT KEY CACERT
//	    apiserver_qps QPS                (default 50)
//	    apiserver_burst BURST            (default 100)
//	    apiserver_max_inflight MAX       (default unlimited)
//	    startup_timeout DURATION         (accepted, ignored with a warning)
//	    upstream [ADDRESS...]            (accepted, ignored with a warning)
//	    resyncperiod DURATION            (accepted, ignored with a warning)
//	}
//
// multicluster, zonal and transfer are refused, saying what to do
// instead. serverZones are the zones of the enclosing server block; the
// warnings returned are for Server.Warnings.
func (p *parser) kubernetes(d *caddyfile.Dispenser, serverZones []string) (*Kubernetes, []string, error) {
	k, err := p.kubernetesDirective(d, serverZones)
	if err != nil {
		return nil, nil, err
	}
	warns := k.warnings
	k.warnings = nil
	return k, warns, nil
}

func (p *parser) kubernetesDirective(d *caddyfile.Dispenser, serverZones []string) (*Kubernetes, error) {
	d.Next() // the directive's name
	line := d.Line()
	k := &Kubernetes{TTL: DefaultTTL, Pods: PodsDisabled}

	args := d.RemainingArgs()
	if err := p.closingBraceArg(line, "kubernetes", args); err != nil {
		return nil, err
	}
	if len(args) == 0 {
		k.Zones = slices.Clone(serverZones)
	}
	for _, a := range args {
		zs, err := normalizeZones(a)
		if err != nil {
			return nil, errorf(p.filename, line, "kubernetes: %v", err)
		}
		for _, z := range zs {
			if !slices.ContainsFunc(serverZones, func(s string) bool { return inZone(z, s) || inZone(s, z) }) {
				// CoreDNS accepts it; its names never reach this block.
				p.warn(line, "kubernetes: zone %q is not inside the server block's zones (%s): no query for it reaches this block",
					z, strings.Join(serverZones, ", "))
			}
			k.Zones = append(k.Zones, z)
		}
	}
	// Answers to reverse lookups name their targets in a forward zone, so a
	// kubernetes directive without one cannot answer anything (CoreDNS
	// refuses it too).
	if !slices.ContainsFunc(k.Zones, func(z string) bool { return !isReverse(z) }) {
		return nil, errorf(p.filename, line, "kubernetes: at least one zone must be a forward (non-reverse) zone, got %s",
			strings.Join(k.Zones, ", "))
	}

	if d.NextArg() { // "{", left in place by RemainingArgs
		if err := p.kubernetesBlock(d, k); err != nil {
			return nil, err
		}
	}
	if len(k.Namespaces) > 0 && k.NamespaceLabels != "" {
		return nil, errorf(p.filename, line, "kubernetes: namespaces and namespace_labels cannot both be set: keep one")
	}
	if d.Next() {
		// caddyfile also hands us a "{" opened on the next line, and words
		// after the closing "}".
		if d.Val() == "{" {
			return nil, errorf(p.filename, d.Line(), `kubernetes: "{" must be on the same line as kubernetes`)
		}
		return nil, errorf(p.filename, d.Line(), "kubernetes: unexpected %q", d.Val())
	}
	return k, nil
}

// kubernetesOptions are the options the kubernetes block accepts.
var kubernetesOptions = []string{"ttl", "pods", "namespaces", "endpoint_pod_names", "manifests", "fallthrough",
	"kubeconfig", "endpoint", "labels", "namespace_labels", "noendpoints", "ignore", "tls",
	"apiserver_qps", "apiserver_burst", "apiserver_max_inflight", "startup_timeout", "upstream", "resyncperiod"}

// kubernetesRefused are CoreDNS kubernetes options svcdisc does not have,
// and what to do instead.
var kubernetesRefused = map[string]string{
	"multicluster": "svcdisc does not serve Multi-Cluster Services (ServiceImport) zones: remove it, and keep CoreDNS " +
		"for the clusterset zone in its own server block that svcdisc forwards to",
	"zonal": "svcdisc does not answer zone-scoped names of headless Services: remove it " +
		"(use trafficDistribution on a ClusterIP Service for zone-local traffic)",
	"transfer": "zone transfers are not a kubernetes option since CoreDNS 1.8, and svcdisc refuses AXFR/IXFR " +
		"of the cluster zones: remove it",
	"autopath": "autopath is a directive of its own, not a kubernetes option: move it out of the kubernetes block",
}

// kubernetesBlock parses the kubernetes block, the dispenser sitting on
// its "{".
func (p *parser) kubernetesBlock(d *caddyfile.Dispenser, k *Kubernetes) error {
	open := d.Line()
	seen := make(map[string]int)
	for {
		if !d.Next() {
			return errorf(p.filename, open, `kubernetes: missing "}"`)
		}
		opt, line := d.Val(), d.Line()
		if opt == "}" {
			return nil
		}
		if why, ok := kubernetesRefused[opt]; ok {
			return errorf(p.filename, line, "kubernetes: %s is not supported: %s", opt, why)
		}
		if !slices.Contains(kubernetesOptions, opt) {
			return errorf(p.filename, line, "kubernetes: unknown option %q", opt)
		}
		args := d.RemainingArgs()
		if err := p.closingBraceArg(line, opt, args); err != nil {
			return err
		}
		if d.NextArg() {
			return errorf(p.filename, d.Line(), "%s: options take no block", opt)
		}
		// Repeating an option is refused rather than letting the last one
		// win: one of the two lines would be silently ignored.
		if prev, ok := seen[opt]; ok && opt != "namespaces" {
			return errorf(p.filename, line, "%s: already set on line %d", opt, prev)
		}
		seen[opt] = line

		switch opt {
		case "ttl":
			if len(args) != 1 {
				return errorf(p.filename, line, "ttl: want 1 argument, got %d", len(args))
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || !allDigits(args[0]) || n > 3600 {
				return errorf(p.filename, line, "ttl: %q is not a number between 0 and 3600", args[0])
			}
			k.TTL = uint32(n)
		case "pods":
			if len(args) != 1 {
				return errorf(p.filename, line, "pods: want 1 argument (disabled, insecure or verified), got %d", len(args))
			}
			switch args[0] {
			case PodsDisabled, PodsInsecure, PodsVerified:
				k.Pods = args[0]
			default:
				return errorf(p.filename, line, "pods: unknown mode %q: want disabled, insecure or verified", args[0])
			}
		case "namespaces":
			if len(args) == 0 {
				return errorf(p.filename, line, "namespaces: want at least 1 argument")
			}
			for _, ns := range args {
				if !slices.Contains(k.Namespaces, ns) {
					k.Namespaces = append(k.Namespaces, ns)
				}
			}
		case "endpoint_pod_names":
			if len(args) != 0 {
				return errorf(p.filename, line, "endpoint_pod_names: want no arguments, got %d", len(args))
			}
			k.EndpointPodNames = true
		case "manifests":
			if len(args) != 1 {
				return errorf(p.filename, line, "manifests: want 1 argument (a path), got %d", len(args))
			}
			k.Manifests = args[0]
		case "kubeconfig":
			if len(args) < 1 || len(args) > 2 {
				return errorf(p.filename, line, "kubeconfig: want a path and an optional context, got %d arguments", len(args))
			}
			k.Kubeconfig = args[0]
			if len(args) == 2 {
				k.Context = args[1]
			}
		case "endpoint":
			if len(args) != 1 {
				return errorf(p.filename, line, "endpoint: want 1 argument (a URL), got %d", len(args))
			}
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return errorf(p.filename, line, "endpoint: %q is not an http(s) URL", args[0])
			}
			k.Endpoint = args[0]
		case "labels":
			if len(args) == 0 {
				return errorf(p.filename, line, "labels: want a label selector")
			}
			sel := strings.Join(args, " ")
			if _, err := labels.Parse(sel); err != nil {
				return errorf(p.filename, line, "labels: %q: %v", sel, err)
			}
			k.Labels = sel
		case "namespace_labels":
			if len(args) == 0 {
				return errorf(p.filename, line, "namespace_labels: want a label selector")
			}
			sel := strings.Join(args, " ")
			if _, err := labels.Parse(sel); err != nil {
				return errorf(p.filename, line, "namespace_labels: %q: %v", sel, err)
			}
			k.NamespaceLabels = sel
		case "noendpoints":
			if len(args) != 0 {
				return errorf(p.filename, line, "noendpoints: want no arguments, got %d", len(args))
			}
			k.NoEndpoints = true
		case "ignore":
			if len(args) != 1 || args[0] != "empty_service" {
				return errorf(p.filename, line, "ignore: want empty_service, got %q", strings.Join(args, " "))
			}
			k.IgnoreEmptyService = true
		case "tls":
			if len(args) != 3 {
				return errorf(p.filename, line, "tls: want CERT KEY CACERT, got %d arguments", len(args))
			}
			k.TLSCert, k.TLSKey, k.TLSCA = args[0], args[1], args[2]
		case "apiserver_qps":
			if len(args) != 1 {
				return errorf(p.filename, line, "apiserver_qps: want 1 argument, got %d", len(args))
			}
			q, err := strconv.ParseFloat(args[0], 32)
			if err != nil || q < 0 || q > 1e6 {
				return errorf(p.filename, line, "apiserver_qps: %q is not a number between 0 and 1000000", args[0])
			}
			k.APIServerQPS = float32(q)
		case "apiserver_burst", "apiserver_max_inflight":
			if len(args) != 1 {
				return errorf(p.filename, line, "%s: want 1 argument, got %d", opt, len(args))
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || !allDigits(args[0]) || n > 1_000_000 {
				return errorf(p.filename, line, "%s: %q is not a number between 0 and 1000000", opt, args[0])
			}
			if opt == "apiserver_burst" {
				k.APIServerBurst = n
			} else {
				k.APIServerMaxInflight = n
			}
		case "startup_timeout":
			if len(args) != 1 {
				return errorf(p.filename, line, "startup_timeout: want 1 argument (a duration), got %d", len(args))
			}
			if _, err := time.ParseDuration(args[0]); err != nil {
				return errorf(p.filename, line, "startup_timeout: %q is not a duration (like 5s)", args[0])
			}
			k.warnings = append(k.warnings, fmt.Sprintf("%s:%d: kubernetes: startup_timeout is ignored: svcdisc answers "+
				"the cluster zones with SERVFAIL, and reports not ready, until it has the whole cluster; remove it", p.filename, line))
		case "upstream":
			k.warnings = append(k.warnings, fmt.Sprintf("%s:%d: kubernetes: upstream is deprecated (removed from CoreDNS in 1.7) "+
				"and ignored: ExternalName targets are resolved through the server block (forward), as in CoreDNS; remove it", p.filename, line))
		case "resyncperiod":
			k.warnings = append(k.warnings, fmt.Sprintf("%s:%d: kubernetes: resyncperiod is deprecated (removed from CoreDNS in 1.7) "+
				"and ignored: svcdisc watches for changes; remove it", p.filename, line))
		case "fallthrough":
			if len(args) == 0 {
				k.Fallthrough = []string{"."}
				break
			}
			k.Fallthrough = make([]string, 0, len(args))
			for _, a := range args {
				z, err := normalizeZone(a)
				if err != nil {
					return errorf(p.filename, line, "fallthrough: %v", err)
				}
				k.Fallthrough = append(k.Fallthrough, z)
			}
		}
	}
}

// closingBraceArg catches a "}" written at the end of a line: caddyfile
// takes it for an argument, which would otherwise surface as a confusing
// argument count.
func (p *parser) closingBraceArg(line int, what string, args []string) error {
	if slices.Contains(args, "}") {
		return errorf(p.filename, line, `%s: "}" must be on a line of its own`, what)
	}
	return nil
}
