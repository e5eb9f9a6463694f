package config

import "strings"

// Prometheus is the prometheus directive:
//
//	prometheus [ADDR] {
//	    names svcdisc|coredns
//	}
//
// ADDR is where /metrics is served, HOST:PORT, default :9153.
// names is how the metrics CoreDNS also has are named: svcdisc (the
// default) exports svcdisc_dns_requests_total and the like; coredns
// exports CoreDNS v1.14.7's names and labels (coredns_dns_requests_total
// {server,zone,view,proto,family,type}...), so that dashboards and alerts
// written for CoreDNS work unchanged. Every prometheus directive of a
// Corefile must say the same names: the process has one registry.
type Prometheus struct {
	Addr  string
	Names string // NamesSVCDisc or NamesCoreDNS
}

// The values of prometheus's names option.
const (
	NamesSVCDisc = "svcdisc"
	NamesCoreDNS = "coredns"
)

// prometheus parses a prometheus directive; every one in the Corefile must
// name the metrics alike (see Prometheus).
func (p *parser) prometheus(d directive) (*Prometheus, error) {
	if len(d.args) > 1 {
		return nil, errorf(p.filename, d.line, "prometheus: want at most 1 argument (an address), got %d", len(d.args))
	}
	pr, line := &Prometheus{Addr: DefaultPrometheusAddr, Names: NamesSVCDisc}, d.line
	if len(d.args) == 1 {
		if err := p.hostPort(d.line, "prometheus", d.args[0]); err != nil {
			return nil, err
		}
		pr.Addr = d.args[0]
	}
	seen := 0
	for _, o := range d.block {
		if o.name != "names" {
			return nil, errorf(p.filename, o.line, "prometheus: unknown option %q: want names svcdisc|coredns", o.name)
		}
		if seen != 0 {
			return nil, errorf(p.filename, o.line, "names: already set on line %d", seen)
		}
		seen = o.line
		if len(o.args) != 1 || (o.args[0] != NamesSVCDisc && o.args[0] != NamesCoreDNS) {
			return nil, errorf(p.filename, o.line, "names: want svcdisc (svcdisc_* metrics) or coredns (CoreDNS's names and labels), got %q",
				strings.Join(o.args, " "))
		}
		pr.Names, line = o.args[0], o.line
	}
	if p.prometheusLine != 0 && p.prometheusNames != pr.Names {
		return nil, errorf(p.filename, line, "prometheus: names %s differs from names %s on line %d: "+
			"all prometheus directives must use the same names (one registry per process)", pr.Names, p.prometheusNames, p.prometheusLine)
	}
	if p.prometheusLine == 0 {
		p.prometheusNames, p.prometheusLine = pr.Names, line
	}
	return pr, nil
}
