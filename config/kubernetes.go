package config

import (
	"net/url"

	"k8s.io/apimachinery/pkg/labels"
	"slices"
	"strconv"
	"strings"

	"github.com/coredns/caddy/caddyfile"
)

// kubernetes parses one kubernetes directive:
//
//	kubernetes [ZONES...] {
//	    ttl N
//	    pods disabled|insecure|verified
//	    namespaces NS...
//	    endpoint_pod_names
//	    manifests PATH
//	    fallthrough [ZONES...]
//	}
//
// serverZones are the zones of the enclosing server block.
func (p *parser) kubernetes(d *caddyfile.Dispenser, serverZones []string) (*Kubernetes, error) {
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
	"kubeconfig", "endpoint", "labels"}

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
