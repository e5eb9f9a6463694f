package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// defaultCache is what `cache` alone in a `.` block means.
func defaultCache() *Cache {
	return &Cache{
		Zones:      []string{"."},
		SuccessCap: 9984, DenialCap: 9984,
		SuccessTTL: 3600 * time.Second, DenialTTL: 1800 * time.Second,
		MinSuccessTTL: 5 * time.Second, MinDenial: 5 * time.Second,
		PrefetchWindow: time.Minute, PrefetchPercent: 10,
		StaleTTL: 30 * time.Second, ServFail: 5 * time.Second,
	}
}

func TestCacheOptions(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		cache  string // the cache directive and its block
		change func(c *Cache)
	}{
		{"defaults", "cache", func(*Cache) {}},
		{"a TTL caps answers and denials alike", "cache 3600", func(c *Cache) { c.DenialTTL = 3600 * s }},
		{"zones", "cache 30 Example.org 10.0.0.0/8", func(c *Cache) {
			c.SuccessTTL, c.DenialTTL, c.Zones = 30*s, 30*s, []string{"example.org.", "10.in-addr.arpa."}
		}},
		{"kubeadm and Talos: disable success and denial for the cluster zone",
			"cache 30 {\n disable success cluster.local\n disable denial cluster.local\n}", func(c *Cache) {
				c.SuccessTTL, c.DenialTTL = 30*s, 30*s
				c.DisableSuccess, c.DisableDenial = []string{"cluster.local."}, []string{"cluster.local."}
			}},
		{"disable without zones is every name", "cache {\n disable denial\n}", func(c *Cache) { c.DisableDenial = []string{"."} }},
		{"repeated disable lines add up", "cache {\n disable success a.org\n disable success b.org c.org\n}", func(c *Cache) {
			c.DisableSuccess = []string{"a.org.", "b.org.", "c.org."}
		}},
		{"servfail", "cache {\n servfail 30s\n}", func(c *Cache) { c.ServFail = 30 * s }},
		{"servfail 0 turns it off", "cache {\n servfail 0\n}", func(c *Cache) { c.ServFail = 0 }},
		{"servfail at the 5m maximum", "cache {\n servfail 5m\n}", func(c *Cache) { c.ServFail = 5 * time.Minute }},
		{"keepttl", "cache {\n keepttl\n}", func(c *Cache) { c.KeepTTL = true }},
		{"serve_stale alone", "cache {\n serve_stale\n}", func(c *Cache) { c.ServeStale = time.Hour }},
		{"serve_stale immediate", "cache {\n serve_stale 2h immediate\n}", func(c *Cache) { c.ServeStale = 2 * time.Hour }},
		{"serve_stale verify", "cache {\n serve_stale 1h VERIFY\n}", func(c *Cache) { c.ServeStale, c.StaleVerify = time.Hour, true }},
		{"serve_stale immediate with response TTL and recheck", "cache {\n serve_stale 1h immediate 10s 30s\n}", func(c *Cache) {
			c.ServeStale, c.StaleTTL, c.StaleRecheck = time.Hour, 10*s, 30*s
		}},
		{"serve_stale verify with timeout, response TTL and recheck", "cache {\n serve_stale 1h verify 100ms 0 1m\n}", func(c *Cache) {
			c.ServeStale, c.StaleVerify, c.VerifyTimeout, c.StaleTTL, c.StaleRecheck = time.Hour, true, 100*time.Millisecond, 0, time.Minute
		}},
		{"serve_stale 0 is off", "cache {\n serve_stale 0\n}", func(c *Cache) {}},
		{"success with a minimum TTL of 0: no floor", "cache {\n success 20000 600 0\n}", func(c *Cache) {
			c.SuccessCap, c.SuccessTTL, c.MinSuccessTTL = 20000, 600*s, 0
		}},
		{"denial 0 (kubespray's example) is CoreDNS's 1024 minimum", "cache 3600 {\n success 3000\n denial 0\n prefetch 10 1m\n}", func(c *Cache) {
			c.SuccessTTL, c.DenialTTL, c.SuccessCap, c.DenialCap, c.Prefetch = 3600*s, 3600*s, 3000, 1024, 10
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("Corefile", strings.NewReader(". {\n    forward . 192.0.2.53\n    "+tc.cache+"\n}\n"))
			if err != nil {
				t.Fatal(err)
			}
			want := defaultCache()
			tc.change(want)
			if c := got.Servers[0].Cache; !reflect.DeepEqual(c, want) {
				t.Errorf("got  %+v\nwant %+v", c, want)
			}
		})
	}
}

func TestCacheWithoutForwardStillParses(t *testing.T) {
	got, err := Parse("Corefile", strings.NewReader("example.org {\n    cache 30\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Servers[0].Cache; c == nil || c.Zones[0] != "example.org." {
		t.Errorf("cache = %+v, want one for the block's zone", c)
	}
}

func TestCacheRefusals(t *testing.T) {
	tests := []struct {
		name, cache, wantErr string
	}{
		{"cache 0", "cache 0", "Corefile:3: cache: cache TTL can not be zero or negative: 0"},
		{"a negative cache TTL", "cache -5", "Corefile:3: cache: cache TTL can not be zero or negative: -5"},
		{"a success TTL of 0", "cache {\n success 100 0\n}", "Corefile:4: success: cache TTL can not be zero or negative: 0"},
		{"a bad zone", "cache 30 exa$mple.org", `Corefile:3: cache: "exa$mple.org" is not a valid zone name`},
		{"cache twice", "cache\n    cache 30", "Corefile:4: cache"},
		{"disable without a type", "cache {\n disable\n}", "Corefile:4: disable: want success or denial"},
		{"disable of an unknown type", "cache {\n disable positive cluster.local\n}", `Corefile:4: disable: "positive" is not a cache type; use success or denial`},
		{"disable of a bad zone", "cache {\n disable denial exa$mple.org\n}", `Corefile:4: disable: "exa$mple.org" is not a valid zone name`},
		{"servfail without a duration", "cache {\n servfail\n}", "Corefile:4: servfail: want 1 argument(s), got 0"},
		{"servfail over 5 minutes", "cache {\n servfail 6m\n}", "Corefile:4: servfail: 6m is over 5m"},
		{"a negative servfail", "cache {\n servfail -1s\n}", `Corefile:4: servfail: "-1s" is not a duration`},
		{"keepttl with an argument", "cache {\n keepttl yes\n}", "Corefile:4: keepttl: want 0 argument(s), got 1"},
		{"an unknown refresh mode", "cache {\n serve_stale 1h later\n}", `Corefile:4: serve_stale: "later" is not a refresh mode; use immediate or verify`},
		{"a fractional stale response TTL", "cache {\n serve_stale 1h immediate 1500ms\n}", "Corefile:4: serve_stale: response TTL 1500ms is not a whole number of seconds"},
		{"a stale recheck over 5 minutes", "cache {\n serve_stale 1h verify 0 30s 10m\n}", "Corefile:4: serve_stale: failure recheck 10m is over 5m"},
		{"too many immediate arguments", "cache {\n serve_stale 1h immediate 30s 30s 30s\n}", "Corefile:4: serve_stale: immediate takes at most"},
		{"a negative serve_stale", "cache {\n serve_stale -1h\n}", `Corefile:4: serve_stale: "-1h" is not a duration`},
		{"serve_stale_policy", "cache {\n serve_stale\n serve_stale_policy prefer_positive\n}", "Corefile:5: cache: serve_stale_policy is not supported"},
		{"an unknown option", "cache {\n negative 100\n}", `Corefile:4: cache: unknown option "negative"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := ". {\n    forward . 192.0.2.53\n    " + tc.cache + "\n}\n"
			_, err := Parse("Corefile", strings.NewReader(in))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.wantErr)
			}
			if !wellFormed.MatchString(err.Error()) {
				t.Errorf("error %q is not of the form FILE:LINE: lower-case message", err)
			}
		})
	}
}
