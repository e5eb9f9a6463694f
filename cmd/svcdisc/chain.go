package main

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/metrics"
	"github.com/svcdisc/svcdisc/plugin"
	pcache "github.com/svcdisc/svcdisc/plugin/cache"
	perrors "github.com/svcdisc/svcdisc/plugin/errors"
	pforward "github.com/svcdisc/svcdisc/plugin/forward"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/plugin/loadbalance"
	plog "github.com/svcdisc/svcdisc/plugin/log"
	"github.com/svcdisc/svcdisc/plugin/rewrite"
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
	log      *slog.Logger
}

// chain builds srv's handlers, in config.Order whatever order the Corefile
// wrote them in, each handing on to the next. Handlers with background work
// are added to p.runners.
func (p *plan) chain(srv config.Server, parts blockParts) (*resolver.Block, error) {
	b := &resolver.Block{Zones: srv.Zones, Zone: parts.zone}
	var next plugin.Handler
	for _, name := range slices.Backward(config.Order) {
		h, err := p.directive(name, srv, parts, next)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", srv.File, srv.Line, name, err)
		}
		if h != nil {
			next = h
		}
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
func (p *plan) directive(name string, srv config.Server, parts blockParts, next plugin.Handler) (plugin.Handler, error) {
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
	case "loadbalance":
		if !srv.LoadBalance {
			return nil, nil
		}
		return &loadbalance.Handler{Next: next}, nil
	case "cache":
		if srv.Cache == nil {
			return nil, nil
		}
		h := &pcache.Handler{Zones: srv.Cache.Zones, Cache: parts.cache, PrefetchTimeout: forwardTimeout, Next: next}
		if z := parts.zone; z != nil {
			fall := srv.Kubernetes.Fallthrough
			h.Skip = func(name string) bool {
				return z.Match(name) != "" && !slices.ContainsFunc(fall, func(f string) bool { return plugin.InZone(name, f) })
			}
		}
		return h, nil
	case "rewrite":
		if len(srv.Rewrites) == 0 {
			return nil, nil
		}
		return rewrite.New(srv.Rewrites, next)
	case "kubernetes":
		if parts.zone == nil {
			return nil, nil
		}
		return kubernetes.New(parts.zone, srv.Kubernetes.Fallthrough, next), nil
	case "forward":
		for i, f := range slices.Backward(srv.Forwards) {
			next = &pforward.Handler{From: f.From, Except: f.Except, Upstream: parts.forwards[i], Timeout: forwardTimeout, Next: next}
		}
		if len(srv.Forwards) == 0 {
			return nil, nil
		}
		return next, nil
	}
	return nil, nil
}
