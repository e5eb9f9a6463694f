package config

import (
	"strconv"
	"strings"
	"time"
)

// Cache is a cache directive: the cache of forwarded answers (cluster
// answers are never cached), CoreDNS's syntax:
//
//	cache [TTL] [ZONES…] {
//	    success CAPACITY [TTL [MINTTL]]
//	    denial CAPACITY [TTL [MINTTL]]
//	    prefetch AMOUNT [DURATION [PERCENT%]]
//	    serve_stale [DURATION [immediate [RESPONSE_TTL [RECHECK]] | verify [TIMEOUT [RESPONSE_TTL [RECHECK]]]]]
//	    servfail DURATION
//	    disable success|denial [ZONES…]
//	    keepttl
//	}
//
// TTL caps how long any answer is kept (default 3600 s for answers, 1800 s
// for denials; zero is refused, as in CoreDNS); ZONES are the names cached
// (default: the server block's zones). success and denial set each cache's
// capacity (default 9984 entries; less than 1024 means 1024, CoreDNS's
// minimum), maximum TTL and minimum TTL (default 5 s; 0 means no floor).
// prefetch refreshes an entry hit AMOUNT times with no gap of DURATION
// (default 1m) once PERCENT (10 to 90, default 10%) of its TTL is left.
// serve_stale answers from an expired entry for up to DURATION (default 1h;
// 0 turns it off) after it expired: immediate (the default) answers at once
// and refreshes in the background, verify asks upstream first and answers
// stale only when that fails, waiting at most TIMEOUT (default 0: the
// upstream's own deadline); stale answers carry RESPONSE_TTL (whole seconds,
// default 30s, RFC 8767's value) and a failed refresh is retried after
// RECHECK (at most 5m; default 0: on the next query, at most one every 5 s).
// servfail keeps SERVFAIL answers for DURATION (default 5s, at most 5m, 0
// turns it off). disable keeps no answers (success) or no denials and
// SERVFAILs (denial) for names in ZONES (default: every name). keepttl
// serves cached answers with the TTL they were stored with.
type Cache struct {
	Zones                    []string // default: the server block's zones
	SuccessCap, DenialCap    int      // default 9984 each, at least 1024
	SuccessTTL, DenialTTL    time.Duration
	MinSuccessTTL, MinDenial time.Duration // 0 = no floor
	Prefetch                 int           // 0 = off
	PrefetchWindow           time.Duration
	PrefetchPercent          int
	ServeStale               time.Duration // 0 = off
	// StaleVerify is the verify refresh mode; false is immediate.
	StaleVerify   bool
	VerifyTimeout time.Duration // 0 = the upstream's own deadline
	StaleTTL      time.Duration // default 30s
	StaleRecheck  time.Duration
	ServFail      time.Duration // default 5s; 0 = off
	// DisableSuccess and DisableDenial list the zones whose answers or
	// denials are not kept ("." for every name).
	DisableSuccess, DisableDenial []string
	KeepTTL                       bool
}

// minCacheCap is the smallest capacity CoreDNS gives a cache (256 shards of
// at least 4 entries).
const minCacheCap = 1024

// cache parses a cache directive; see Cache.
func (p *parser) cache(d directive, serverZones []string) (*Cache, error) {
	c := &Cache{
		SuccessCap: DefaultCacheCap, DenialCap: DefaultCacheCap,
		SuccessTTL: 3600 * time.Second, DenialTTL: 1800 * time.Second,
		MinSuccessTTL: 5 * time.Second, MinDenial: 5 * time.Second,
		PrefetchWindow: time.Minute, PrefetchPercent: 10,
		StaleTTL: 30 * time.Second, ServFail: 5 * time.Second,
	}
	args := d.args
	if len(args) > 0 {
		if _, err := strconv.Atoi(args[0]); err == nil {
			ttl, err := p.cacheTTL(d.line, "cache", args[0])
			if err != nil {
				return nil, err
			}
			c.SuccessTTL, c.DenialTTL = ttl, ttl
			args = args[1:]
		}
	}
	for _, a := range args {
		z, err := normalizeZone(a)
		if err != nil {
			return nil, errorf(p.filename, d.line, "cache: %v", err)
		}
		c.Zones = append(c.Zones, z)
	}
	if len(c.Zones) == 0 {
		c.Zones = append([]string(nil), serverZones...)
	}
	for _, o := range d.block {
		var err error
		switch o.name {
		case "success", "denial":
			err = p.cacheClass(c, o)
		case "prefetch":
			err = p.cachePrefetch(c, o)
		case "serve_stale":
			err = p.serveStale(c, o)
		case "servfail":
			if err = p.wantArgs(o, 1, 1); err == nil {
				c.ServFail, err = p.duration(o.line, o.name, o.args[0], 0)
			}
			if err == nil && c.ServFail > 5*time.Minute {
				err = errorf(p.filename, o.line, "servfail: %s is over 5m: caching SERVFAIL longer is not permitted (RFC 2308); use at most 5m", o.args[0])
			}
		case "disable":
			err = p.cacheDisable(c, o)
		case "keepttl":
			err = p.wantArgs(o, 0, 0)
			c.KeepTTL = true
		case "serve_stale_policy":
			err = errorf(p.filename, o.line, "cache: serve_stale_policy is not supported; remove it (a later denial replaces a cached answer)")
		default:
			err = errorf(p.filename, o.line, "cache: unknown option %q", o.name)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// cacheTTL parses a maximum TTL: whole seconds (or a duration), not zero.
func (p *parser) cacheTTL(line int, what, s string) (time.Duration, error) {
	if n, err := strconv.Atoi(s); err == nil && n <= 0 {
		return 0, errorf(p.filename, line, "%s: cache TTL can not be zero or negative: %d; leave the TTL out for the default, or remove cache", what, n)
	}
	return p.duration(line, what, s, time.Second)
}

// cacheClass parses `success|denial CAPACITY [TTL [MINTTL]]`.
func (p *parser) cacheClass(c *Cache, o option) error {
	if err := p.wantArgs(o, 1, 3); err != nil {
		return err
	}
	capacity, err := p.count(o.line, o.name, o.args[0], 0)
	if err != nil {
		return err
	}
	capacity = max(capacity, minCacheCap)
	ttl, minTTL := &c.SuccessTTL, &c.MinSuccessTTL
	if o.name == "success" {
		c.SuccessCap = capacity
	} else {
		c.DenialCap = capacity
		ttl, minTTL = &c.DenialTTL, &c.MinDenial
	}
	if len(o.args) > 1 {
		if *ttl, err = p.cacheTTL(o.line, o.name, o.args[1]); err != nil {
			return err
		}
	}
	if len(o.args) > 2 {
		if *minTTL, err = p.duration(o.line, o.name, o.args[2], 0); err != nil {
			return err
		}
	}
	return nil
}

// cachePrefetch parses `prefetch AMOUNT [DURATION [PERCENT%]]`.
func (p *parser) cachePrefetch(c *Cache, o option) error {
	if err := p.wantArgs(o, 1, 3); err != nil {
		return err
	}
	var err error
	if c.Prefetch, err = p.count(o.line, o.name, o.args[0], 1); err != nil {
		return err
	}
	if len(o.args) > 1 {
		if c.PrefetchWindow, err = p.duration(o.line, o.name, o.args[1], time.Second); err != nil {
			return err
		}
	}
	if len(o.args) > 2 {
		pct, ok := strings.CutSuffix(o.args[2], "%")
		n, err := strconv.Atoi(pct)
		if !ok || err != nil || n < 10 || n > 90 {
			return errorf(p.filename, o.line, "prefetch: %q is not a percentage between 10%% and 90%%", o.args[2])
		}
		c.PrefetchPercent = n
	}
	return nil
}

// serveStale parses `serve_stale [DURATION [immediate [RESPONSE_TTL
// [RECHECK]] | verify [TIMEOUT [RESPONSE_TTL [RECHECK]]]]]`.
func (p *parser) serveStale(c *Cache, o option) error {
	if err := p.wantArgs(o, 0, 5); err != nil {
		return err
	}
	c.ServeStale = time.Hour
	c.StaleVerify, c.VerifyTimeout, c.StaleTTL, c.StaleRecheck = false, 0, 30*time.Second, 0
	var err error
	if len(o.args) > 0 {
		if c.ServeStale, err = p.duration(o.line, o.name, o.args[0], 0); err != nil {
			return err
		}
	}
	if len(o.args) < 2 {
		return nil
	}
	rest := o.args[2:]
	switch mode := strings.ToLower(o.args[1]); mode {
	case "immediate":
		if len(rest) > 2 {
			return errorf(p.filename, o.line, "serve_stale: immediate takes at most RESPONSE_TTL and RECHECK, got %d arguments", len(rest))
		}
	case "verify":
		c.StaleVerify = true
		if len(rest) > 0 {
			if c.VerifyTimeout, err = p.duration(o.line, "serve_stale verify timeout", rest[0], 0); err != nil {
				return err
			}
			rest = rest[1:]
		}
	default:
		return errorf(p.filename, o.line, "serve_stale: %q is not a refresh mode; use immediate or verify", o.args[1])
	}
	if len(rest) > 0 {
		if c.StaleTTL, err = p.duration(o.line, "serve_stale response TTL", rest[0], 0); err != nil {
			return err
		}
		if c.StaleTTL%time.Second != 0 {
			return errorf(p.filename, o.line, "serve_stale: response TTL %s is not a whole number of seconds", rest[0])
		}
	}
	if len(rest) > 1 {
		if c.StaleRecheck, err = p.duration(o.line, "serve_stale failure recheck", rest[1], 0); err != nil {
			return err
		}
		if c.StaleRecheck > 5*time.Minute {
			return errorf(p.filename, o.line, "serve_stale: failure recheck %s is over 5m; use at most 5m (RFC 8767)", rest[1])
		}
	}
	return nil
}

// cacheDisable parses `disable success|denial [ZONES…]`; repeated lines
// add up.
func (p *parser) cacheDisable(c *Cache, o option) error {
	if len(o.args) == 0 {
		return errorf(p.filename, o.line, "disable: want success or denial and optional zones")
	}
	zones := []string{"."}
	if len(o.args) > 1 {
		zones = nil
		for _, a := range o.args[1:] {
			z, err := normalizeZone(a)
			if err != nil {
				return errorf(p.filename, o.line, "disable: %v", err)
			}
			zones = append(zones, z)
		}
	}
	switch o.args[0] {
	case "success":
		c.DisableSuccess = append(c.DisableSuccess, zones...)
	case "denial":
		c.DisableDenial = append(c.DisableDenial, zones...)
	default:
		return errorf(p.filename, o.line, "disable: %q is not a cache type; use success or denial", o.args[0])
	}
	return nil
}
