package main

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
)

// The query files are dnsperf input, "NAME TYPE" a line, c.Queries lines
// each, drawn from a generator seeded with c.Seed so that every run asks the
// same questions.

func (c *cluster) rand(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(c.Seed, stream))
}

func (c *cluster) fqdn(s service) string {
	return fmt.Sprintf("%s.%s.svc.%s", s.Name, s.NS, c.Zone)
}

// writeA: A queries for ClusterIP Services, uniformly at random.
func (c *cluster) writeA(w io.Writer) error {
	ew := &errWriter{w: w}
	r := c.rand(1)
	for range c.Queries {
		ew.printf("%s A\n", c.fqdn(c.services[r.IntN(len(c.services))]))
	}
	return ew.err
}

// writeNXDomain: what a pod's resolver sends under Kubernetes' resolv.conf
// (search NS.svc.ZONE svc.ZONE ZONE; options ndots:5) when it looks up a
// Service in another namespace. Half the lookups use the full name without
// the trailing dot (4 dots < 5: three search expansions, all NXDOMAIN,
// then the name itself), half the short form svc.ns (one NXDOMAIN
// expansion in the pod's namespace, then the svc.ZONE expansion, found).
// The lookup's pod is in a namespace drawn at random; the lookups are cut at
// c.Queries lines, so the mix is about 2/3 NXDOMAIN.
func (c *cluster) writeNXDomain(w io.Writer) error {
	ew := &errWriter{w: w}
	r := c.rand(2)
	var lines []string
	for len(lines) < c.Queries {
		s := c.services[r.IntN(len(c.services))]
		pod := c.namespaces[r.IntN(len(c.namespaces))]
		search := []string{pod + ".svc." + c.Zone, "svc." + c.Zone, c.Zone}
		if r.IntN(2) == 0 {
			name := c.fqdn(s)
			for _, d := range search {
				lines = append(lines, name+"."+d)
			}
			lines = append(lines, name)
			continue
		}
		short := s.Name + "." + s.NS
		lines = append(lines, short+"."+search[0], short+"."+search[1])
	}
	for _, l := range lines[:c.Queries] {
		ew.printf("%s A\n", l)
	}
	return ew.err
}

// writeSRV: SRV queries for named ports, 80% of ClusterIP Services
// (_http or _metrics), 20% of headless ones (_http, ten targets).
func (c *cluster) writeSRV(w io.Writer) error {
	ew := &errWriter{w: w}
	r := c.rand(3)
	for range c.Queries {
		if len(c.headless) == 0 || r.IntN(10) < 8 {
			s := c.services[r.IntN(len(c.services))]
			p := s.Ports[r.IntN(len(s.Ports))]
			ew.printf("_%s._tcp.%s SRV\n", p.Name, c.fqdn(s))
			continue
		}
		h := c.headless[r.IntN(len(c.headless))]
		ew.printf("_%s._tcp.%s.%s.svc.%s SRV\n", h.EPPort.Name, h.Name, h.NS, c.Zone)
	}
	return ew.err
}

// writeExternal: A queries for host-<i>.example.test, Zipf-distributed
// (s = 1.1) over c.External names, as traffic to outside names is.
func (c *cluster) writeExternal(w io.Writer) error {
	ew := &errWriter{w: w}
	z := zipf(c.rand(4), 1.1, c.External)
	for range c.Queries {
		ew.printf("host-%d.example.test A\n", z())
	}
	return ew.err
}

// zipf returns a sampler of 0..n-1 where rank k has weight 1/(k+1)^s.
func zipf(r *rand.Rand, s float64, n int) func() int {
	cdf := make([]float64, n)
	var sum float64
	for k := range n {
		sum += 1 / math.Pow(float64(k+1), s)
		cdf[k] = sum
	}
	return func() int {
		return min(sort.SearchFloat64s(cdf, r.Float64()*sum), n-1)
	}
}
