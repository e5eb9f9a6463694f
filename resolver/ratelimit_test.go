package resolver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(t *testing.T, o RateLimit) (*RateLimiter, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	o.Now = clock.now
	l, err := NewRateLimiter(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func TestRateLimiterGroupsClientsByPrefix(t *testing.T) {
	tests := []struct {
		name       string
		v4, v6     int
		first, alt string
		shared     bool
	}{
		{"IPv4 addresses in one /24 share a bucket", 0, 0, "192.0.2.1", "192.0.2.254", true},
		{"the next /24 has its own", 0, 0, "192.0.2.1", "192.0.3.1", false},
		{"an IPv4-mapped source counts as its IPv4 address", 0, 0, "192.0.2.1", "::ffff:192.0.2.77", true},
		{"IPv6 addresses in one /56 share a bucket", 0, 0, "2001:db8:0:1::1", "2001:db8:0:ff:1:2:3:4", true},
		{"the next /56 has its own", 0, 0, "2001:db8:0:1::1", "2001:db8:0:100::1", false},
		{"IPv4 and IPv6 never share", 0, 0, "0.0.0.1", "::1", false},
		{"ipv4_prefix 32 limits each address", 32, 0, "192.0.2.1", "192.0.2.2", false},
		{"ipv4_prefix 16 groups more", 16, 0, "192.0.2.1", "192.0.99.2", true},
		{"ipv6_prefix 64 splits a /56", 0, 64, "2001:db8:0:1::1", "2001:db8:0:2::1", false},
		{"ipv6_prefix 64 groups a /64", 0, 64, "2001:db8:0:1::1", "2001:db8:0:1:ffff::1", true},
		{"ipv6_prefix 128 limits each address", 0, 128, "2001:db8::1", "2001:db8::2", false},
		{"ipv6_prefix 48 groups a /48", 0, 48, "2001:db8:0:1::1", "2001:db8:0:ffff::1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, RateLimit{Rate: 1, IPv4Prefix: tt.v4, IPv6Prefix: tt.v6})
			if v := l.decide(net.ParseIP(tt.first)); v != admitted {
				t.Fatalf("first query from %s: %v", tt.first, v)
			}
			v := l.decide(net.ParseIP(tt.alt))
			if shared := v != admitted; shared != tt.shared {
				t.Fatalf("%s after %s: shared bucket = %v, want %v", tt.alt, tt.first, shared, tt.shared)
			}
		})
	}
}

func TestRateLimiterAllowsABurstThenRefillsAtTheRate(t *testing.T) {
	l, clock := newTestLimiter(t, RateLimit{Rate: 10, Burst: 5})
	ip := net.ParseIP("192.0.2.1")
	admits := func() int {
		n := 0
		for range 100 {
			if l.decide(ip) == admitted {
				n++
			}
		}
		return n
	}
	if n := admits(); n != 5 {
		t.Fatalf("a fresh prefix got %d answers at once, want the burst of 5", n)
	}
	clock.advance(100 * time.Millisecond)
	if n := admits(); n != 1 {
		t.Fatalf("after 100ms at 10/s: %d answers, want 1", n)
	}
	clock.advance(250 * time.Millisecond)
	if n := admits(); n != 2 {
		t.Fatalf("after 250ms at 10/s: %d answers, want 2", n)
	}
	clock.advance(time.Hour)
	if n := admits(); n != 5 {
		t.Fatalf("after an hour's quiet: %d answers, want no more than the burst of 5", n)
	}
}

func TestRateLimiterBurstDefaultsToTheRate(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimit{Rate: 3})
	ip := net.ParseIP("2001:db8::1")
	for i := range 3 {
		if v := l.decide(ip); v != admitted {
			t.Fatalf("query %d: %v", i+1, v)
		}
	}
	if v := l.decide(ip); v == admitted {
		t.Fatal("the fourth query in the same instant was answered")
	}
}

func TestRateLimiterSlipsEveryNthLimitedQuery(t *testing.T) {
	tests := []struct {
		name string
		slip int
		want string // verdicts of the limited queries: d dropped, s slipped
	}{
		{"slip 0 drops every one", 0, "dddddd"},
		{"slip 1 slips every one", 1, "ssssss"},
		{"slip 2 slips every other", 2, "dsdsds"},
		{"slip 3 slips every third", 3, "ddsdds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(t, RateLimit{Rate: 1, Slip: tt.slip})
			ip := net.ParseIP("192.0.2.1")
			if v := l.decide(ip); v != admitted {
				t.Fatalf("first query: %v", v)
			}
			var got strings.Builder
			for range len(tt.want) {
				switch l.decide(ip) {
				case admitted:
					got.WriteByte('a')
				case dropped:
					got.WriteByte('d')
				case slipped:
					got.WriteByte('s')
				}
			}
			if got.String() != tt.want {
				t.Fatalf("limited queries went %q, want %q", got.String(), tt.want)
			}
		})
	}
}

func TestRateLimiterNeverLimitsExemptClients(t *testing.T) {
	l, _ := newTestLimiter(t, RateLimit{Rate: 1, Exempt: []netip.Prefix{
		netip.MustParsePrefix("10.1.2.3/8"), // written unmasked: still the /8
		netip.MustParsePrefix("fd00::/8"),
	}})
	for _, a := range []string{"10.200.0.1", "::ffff:10.0.0.1", "fd12::1"} {
		for i := range 50 {
			if v := l.decide(net.ParseIP(a)); v != admitted {
				t.Fatalf("exempt %s limited at query %d", a, i+1)
			}
		}
	}
	other := net.ParseIP("11.0.0.1")
	l.decide(other)
	if v := l.decide(other); v == admitted {
		t.Fatal("a client outside the exempt prefixes was not limited")
	}
}

func TestRateLimiterTableStaysBoundedUnderAFloodOfSources(t *testing.T) {
	const max = 1024
	l, _ := newTestLimiter(t, RateLimit{Rate: 10, Burst: 5, MaxPrefixes: max})
	if c := l.capacity(); c > max {
		t.Fatalf("table of %d entries for MaxPrefixes %d", c, max)
	}
	heavy := net.ParseIP("198.51.100.1")
	for range 5 {
		l.decide(heavy)
	}
	if l.decide(heavy) == admitted {
		t.Fatal("the heavy prefix is not limited to start with")
	}
	// A forged-source flood: 100k distinct /56s, each asking once.
	ip := make(net.IP, net.IPv6len)
	ip[0] = 0x20
	for i := range 100_000 {
		binary.BigEndian.PutUint32(ip[3:], uint32(i)) // bytes 3..6: inside the /56
		if l.decide(ip) != admitted {
			t.Fatalf("flood source %d limited on its first query", i)
		}
	}
	used := 0
	for i := range l.shards {
		for _, e := range l.shards[i].entries {
			if e.tat != 0 {
				used++
			}
		}
	}
	if used > max {
		t.Fatalf("%d prefixes tracked, want at most %d", used, max)
	}
	// Fresh entries are evicted before one whose bucket is empty: the
	// flood does not reset the heavy prefix's limit.
	if l.decide(heavy) == admitted {
		t.Fatal("the flood evicted the heavy prefix: it was answered again at once")
	}
}

func TestRateLimiterEvictsIdlePrefixesFirst(t *testing.T) {
	// One set of 8: every prefix competes for the same entries.
	l, clock := newTestLimiter(t, RateLimit{Rate: 1, Burst: 2, MaxPrefixes: 8})
	heavy := net.ParseIP("198.51.100.1")
	l.decide(heavy)
	for i := range 7 {
		l.decide(net.IPv4(192, 0, byte(i), 1))
	}
	clock.advance(10 * time.Second) // the seven are idle now, their buckets full
	l.decide(heavy)                 // and the heavy prefix empties its bucket again
	l.decide(heavy)
	for i := range 20 {
		l.decide(net.IPv4(203, 0, byte(i), 1))
	}
	if l.decide(heavy) == admitted {
		t.Fatal("the busy prefix was evicted before idle ones")
	}
}

func TestRateLimiterDoesNotAllocate(t *testing.T) {
	l, err := NewRateLimiter(RateLimit{Rate: 100, Slip: 2, Exempt: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	req, _ := m.Pack()
	out := make([]byte, 512)
	repeat := net.ParseIP("192.0.2.1")
	fresh := make(net.IP, net.IPv6len)
	fresh[0] = 0x20
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		l.decide(repeat)
		i++
		binary.BigEndian.PutUint32(fresh[3:], i)
		l.decide(fresh)
		slipReply(req, out)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per query", allocs)
	}
}

func TestNewRateLimiterRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		o    RateLimit
		want string
	}{
		{"no rate", RateLimit{}, "rate 0"},
		{"a negative burst", RateLimit{Rate: 1, Burst: -1}, "burst -1"},
		{"an IPv4 prefix over 32", RateLimit{Rate: 1, IPv4Prefix: 33}, "IPv4 prefix length 33"},
		{"an IPv6 prefix over 128", RateLimit{Rate: 1, IPv6Prefix: 129}, "IPv6 prefix length 129"},
		{"a negative slip", RateLimit{Rate: 1, Slip: -2}, "slip -2"},
		{"a rate past the bound", RateLimit{Rate: maxRate + 1}, "rate 1000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRateLimiter(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestSlipReplyIsAnEmptyTruncatedAnswer(t *testing.T) {
	query := func(f func(m *dns.Msg)) []byte {
		m := new(dns.Msg)
		m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
		m.Id = 0xbeef
		m.CheckingDisabled = true
		f(m)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := query(func(*dns.Msg) {})
	tests := []struct {
		name  string
		req   []byte
		reply bool
	}{
		{"a plain query", plain, true},
		{"a query with EDNS gets an OPT back", query(func(m *dns.Msg) { m.SetEdns0(4096, true) }), true},
		{"a response gets none", query(func(m *dns.Msg) { m.Response = true }), false},
		{"a NOTIFY gets none", query(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), false},
		{"two questions get none", func() []byte { b := append([]byte(nil), plain...); b[5] = 2; return b }(), false},
		{"a cut question gets none", plain[:len(plain)-3], false},
		{"a short header gets none", plain[:11], false},
		{"a compression pointer gets none", append(append([]byte(nil), plain[:12]...), 0xc0, 12, 0, 1, 0, 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, 512)
			n := slipReply(tt.req, out)
			if !tt.reply {
				if n != 0 {
					t.Fatalf("a %d-byte reply, want none", n)
				}
				return
			}
			if n == 0 || n > len(tt.req) {
				t.Fatalf("reply of %d bytes to a %d-byte query", n, len(tt.req))
			}
			r := new(dns.Msg)
			if err := r.Unpack(out[:n]); err != nil {
				t.Fatalf("unparseable reply: %v", err)
			}
			if !r.Response || !r.Truncated || r.Id != 0xbeef || !r.RecursionDesired || !r.CheckingDisabled ||
				r.Rcode != dns.RcodeSuccess || len(r.Answer)+len(r.Ns) != 0 ||
				len(r.Question) != 1 || r.Question[0].Name != "web.shop.svc.cluster.local." {
				t.Fatalf("reply:\n%v", r)
			}
			if q := new(dns.Msg); q.Unpack(tt.req) == nil && q.IsEdns0() != nil {
				if o := r.IsEdns0(); len(r.Extra) != 1 || o == nil || o.UDPSize() != 1232 || !o.Do() || o.Version() != 0 {
					t.Fatalf("an EDNS query's slip reply has no OPT of 1232 bytes with DO:\n%v", r)
				}
			} else if len(r.Extra) != 0 {
				t.Fatalf("additional records in the reply to a query without EDNS:\n%v", r)
			}
		})
	}
}

func TestWithRateLimitKeepsTheFastPathAndCarriesTheLimiter(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	l, _ := newTestLimiter(t, RateLimit{Rate: 1})
	wrapped := WithRateLimit(h, l)
	if limiterOf(wrapped) != l || limiterOf(h) != nil {
		t.Fatal("the limiter does not travel with the handler")
	}
	m := new(dns.Msg)
	m.SetQuestion("web.shop.svc.cluster.local.", dns.TypeA)
	req, _ := m.Pack()
	out := make([]byte, 512)
	fh, ok := wrapped.(FastHandler)
	if !ok {
		t.Fatal("the wrapped handler has no fast path")
	}
	fh.ServeFast(req, out, false) // the first builds the kept reply
	if _, ok := fh.ServeFast(req, out, false); !ok {
		t.Fatal("the fast path declined through the wrapper")
	}
	if _, ok := WithRateLimit(dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}), l).(FastHandler).ServeFast(req, out, false); ok {
		t.Fatal("a handler without a fast path answered on one")
	}
}
