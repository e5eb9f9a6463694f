package main

import (
	"time"

	"github.com/svcdisc/svcdisc/cache"
	"github.com/svcdisc/svcdisc/config"
)

// cacheOptions turns a cache directive into the cache's options. The
// config says 0 for "off" where the cache says "default" for 0.
func cacheOptions(c *config.Cache) cache.Options {
	off := func(d time.Duration) time.Duration {
		if d == 0 {
			return -1
		}
		return d
	}
	return cache.Options{
		SuccessCap: c.SuccessCap, DenialCap: c.DenialCap,
		SuccessTTL: c.SuccessTTL, DenialTTL: c.DenialTTL,
		MinSuccessTTL: off(c.MinSuccessTTL), MinDenialTTL: off(c.MinDenial),
		Prefetch: c.Prefetch, PrefetchWindow: c.PrefetchWindow, PrefetchPercent: c.PrefetchPercent,
		ServeStale: c.ServeStale, StaleTTL: off(c.StaleTTL), StaleRecheck: c.StaleRecheck,
		ServFailTTL: off(c.ServFail),
		NoSuccess:   c.DisableSuccess, NoDenial: c.DisableDenial,
		KeepTTL: c.KeepTTL,
	}
}
