package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/metrics"
	"github.com/svcdisc/svcdisc/plugin"
	pany "github.com/svcdisc/svcdisc/plugin/any"
	"github.com/svcdisc/svcdisc/plugin/autopath"
	"github.com/svcdisc/svcdisc/plugin/bufsize"
	pcache "github.com/svcdisc/svcdisc/plugin/cache"
	"github.com/svcdisc/svcdisc/plugin/chaos"
	"github.com/svcdisc/svcdisc/plugin/dns64"
	perrors "github.com/svcdisc/svcdisc/plugin/errors"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	phosts "github.com/svcdisc/svcdisc/plugin/hosts"
	k8sexternal "github.com/svcdisc/svcdisc/plugin/k8s_external"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/plugin/loadbalance"
	plog "github.com/svcdisc/svcdisc/plugin/log"
	"github.com/svcdisc/svcdisc/plugin/minimal"
	"github.com/svcdisc/svcdisc/plugin/rewrite"
	ptemplate "github.com/svcdisc/svcdisc/plugin/template"
	"github.com/svcdisc/svcdisc/resolver"
	"github.com/svcdisc/svcdisc/zones"
)

// blockParts is what a server block's chain is built from beyond its
// Corefile text: the running pieces build made for it.
type blockParts struct {
	zone     *zones.Zone         // the kubernetes directive's, or nil
	forwards []pforward.Upstream // one per srv.Forwards
	cache    *cache.Cache        // the cache directive's, or nil
	met      *metrics.Metrics    // nil without prometheus
	servers  []string            // the block's server labels, "dns://" + listen address
	log      *slog.Logger
}

// chain builds srv's handlers, in config.Order whatever order the Corefile
// wrote them in, each handing on to the next. Handlers with background work
// are added to p.runners.
func (p *plan) chain(srv config.Server, parts blockParts) (*resolver.Block, error) {
	b := &resolver.Block{Zones: srv.Zones, Zone: parts.zone}
	var next plugin.Handler
	var names []string // for coredns_plugin_enabled
	for _, name := range slices.Backward(config.Order) {
		h, err := p.directive(name, srv, parts, b, next)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", srv.File, srv.Line, name, err)
		}
		if h != nil {
			next = h
			names = append(names, h.Name())
		}
	}
	if parts.met != nil {
		parts.met.PluginsEnabled(parts.servers, srv.Zones, names)
	}
	if next == nil {
		return nil, fmt.Errorf("%s:%d: the server block for %s answers nothing: add kubernetes, forward, hosts or template",
			srv.File, srv.Line, strings.Join(srv.Zones, " "))
	}
	b.Chain = next
	return b, nil
}

// directive returns the handler of directive name in srv in front of next,
// or nil when srv does not have it (or it does not handle queries).
func (p *plan) directive(name string, srv config.Server, parts blockParts, b *resolver.Block, next plugin.Handler) (plugin.Handler, error) {
	switch name {
	case "errors":
		if srv.Errors == nil {
			return nil, nil
		}
		h := &perrors.Handler{Consolidate: srv.Errors.Consolidate, Log: parts.log, Next: next}
		if len(srv.Errors.Consolidate) > 0 {
			p.runners = append(p.runners, h)
		}
		return h, nil
	case "log":
		if len(srv.Log) == 0 {
			return nil, nil
		}
		return &plog.Handler{Rules: srv.Log, Log: parts.log, Next: next}, nil
	case "bufsize":
		if srv.BufSize == 0 {
			return nil, nil
		}
		return &bufsize.Handler{Size: srv.BufSize, Next: next}, nil
	case "dns64":
		if srv.DNS64 == nil {
			return nil, nil
		}
		return &dns64.Handler{DNS64: *srv.DNS64, Next: next}, nil
	case "any":
		if !srv.Any {
			return nil, nil
		}
		return &pany.Handler{Next: next}, nil
	case "chaos":
		if srv.Chaos == nil {
			return nil, nil
		}
		h := &chaos.Handler{Version: srv.Chaos.Version, Authors: srv.Chaos.Authors, Next: next}
		if h.Version == "" {
			h.Version = "svcdisc-" + versionString()
		}
		if len(h.Authors) == 0 {
			h.Authors = []string{"svcdisc"}
		}
		return h, nil
	case "minimal":
		if !srv.Minimal {
			return nil, nil
		}
		return &minimal.Handler{Next: next}, nil
	case "loadbalance":
		if !srv.LoadBalance {
			return nil, nil
		}
		return &loadbalance.Handler{Next: next}, nil
	case "cache":
		if srv.Cache == nil {
			return nil, nil
		}
		h := &pcache.Handler{Zones: srv.Cache.Zones, Cache: parts.cache, StaleVerify: srv.Cache.StaleVerify,
			VerifyTimeout: srv.Cache.VerifyTimeout, PrefetchTimeout: forwardTimeout, Next: next}
		if z := parts.zone; z != nil {
			fall := srv.Kubernetes.Fallthrough
			h.Skip = func(name string) bool {
				return z.Match(name) != "" && !slices.ContainsFunc(fall, func(f string) bool { return plugin.InZone(name, f) })
			}
		}
		return h, nil
	case "template":
		for _, t := range slices.Backward(srv.Templates) {
			h, err := ptemplate.New(t, next)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", t.Line, err)
			}
			h.Lookup = blockLookup(b)
			next = h
		}
		if len(srv.Templates) == 0 {
			return nil, nil
		}
		return next, nil
	case "hosts":
		if srv.Hosts == nil {
			return nil, nil
		}
		h, err := phosts.New(srv.Hosts, parts.log, next)
		if err != nil {
			return nil, err
		}
		p.runners = append(p.runners, h)
		return h, nil
	case "k8s_external":
		e := srv.K8sExternal
		if e == nil || parts.zone == nil {
			return nil, nil
		}
		return &k8sexternal.Handler{Zones: e.Zones, Apex: e.Apex, TTL: e.TTL, Headless: e.Headless,
			Fallthrough: e.Fallthrough, Zone: parts.zone, Next: next}, nil
	case "autopath":
		return autopathHandler(srv, parts, b, next), nil
	case "rewrite":
		if len(srv.Rewrites) == 0 {
			return nil, nil
		}
		return rewrite.New(srv.Rewrites, next)
	case "kubernetes":
		if parts.zone == nil {
			return nil, nil
		}
		h := kubernetes.New(parts.zone, srv.Kubernetes.Fallthrough, next)
		h.Lookup = blockLookup(b)
		if parts.met != nil {
			h.Expansion = parts.met.SearchExpansions(parts.servers)
			b.Expansion = h.Expansion // the fast path's replies
		}
		return h, nil
	case "forward":
		for i, f := range slices.Backward(srv.Forwards) {
			next = &pforward.Handler{From: f.From, Except: f.Except, Upstream: parts.forwards[i], Timeout: forwardDeadline(f),
				NextRcodes: f.Next, NextOnNodata: f.NextOnNodata, Next: next}
		}
		if len(srv.Forwards) == 0 {
			return nil, nil
		}
		return next, nil
	}
	return nil, nil
}

// hostResolvConf is the host's resolver configuration, whose search
// domains follow the cluster ones in a Pod's search path (autopath
// @kubernetes).
var hostResolvConf = "/etc/resolv.conf"

// autopathHandler returns srv's autopath handler, or nil when it has none
// or it cannot complete anything (@kubernetes without pods verified, which
// the configuration warned about).
func autopathHandler(srv config.Server, parts blockParts, b *resolver.Block, next plugin.Handler) plugin.Handler {
	a := srv.AutoPath
	if a == nil {
		return nil
	}
	h := &autopath.Handler{Zones: a.Zones, Search: a.Search, Lookup: blockLookup(b), Next: next}
	if a.Kubernetes {
		if parts.zone == nil || srv.Kubernetes.Pods != config.PodsVerified {
			return nil
		}
		h.Pods = parts.zone
		if rc, err := dns.ClientConfigFromFile(hostResolvConf); err == nil {
			for _, s := range rc.Search {
				h.HostSearch = append(h.HostSearch, strings.ToLower(dns.Fqdn(s)))
			}
		}
	}
	if parts.met != nil {
		h.Count = parts.met.AutoPath(parts.servers)
	}
	return h
}

// blockLookup resolves a name through b's chain from its start, as a query
// made for the one being answered; names outside b's zones are not looked
// up (nil).
func blockLookup(b *resolver.Block) plugin.Lookup {
	return func(ctx context.Context, st *plugin.State, name string, qtype uint16) *dns.Msg {
		name = strings.ToLower(name)
		if !slices.ContainsFunc(b.Zones, func(z string) bool { return plugin.InZone(name, z) }) || b.Chain == nil {
			return nil
		}
		return b.Chain.ServeDNS(ctx, plugin.LookupState(st, name, qtype, b.ZoneOf(name)))
	}
}
