package forward

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// BenchmarkExchange forwards A queries to an in-process server on loopback:
// the cost of one forwarded query, socket set-up and the server's side
// included.
func BenchmarkExchange(b *testing.B) {
	up := startUpstream(b, answerA("192.0.2.1"))
	f, err := New(Options{Upstreams: []string{up.Addr}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	f.Start()
	defer f.Stop()
	ctx := context.Background()

	b.Run("serial", func(b *testing.B) {
		req := query("bench.example.", dns.TypeA)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Exchange(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			// Distinct names, so that no query shares another's exchange.
			req := query(fmt.Sprintf("bench%d.example.", n.Add(1)), dns.TypeA)
			for pb.Next() {
				if _, err := f.Exchange(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkKnotUpstreamMiss compares a query answered by a real knotd
// directly with the same query through a Forwarder: the difference is what
// forwarding adds to an upstream miss.
func BenchmarkKnotUpstreamMiss(b *testing.B) {
	addr := startKnot(b)
	req := query("www.example.test.", dns.TypeA)
	b.Run("direct", func(b *testing.B) {
		c := &dns.Client{}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := c.Exchange(req, addr); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("forwarder", func(b *testing.B) {
		f, err := New(Options{Upstreams: []string{addr}, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.Exchange(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
