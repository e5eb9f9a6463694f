package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Answer is a response reduced to what is compared: the rcode, the AA, TC
// and RA flags, the question, and each section as a sorted set of RR
// strings (owner names lower case; SOA serials 0; TTLs 0 when the query
// says +anyttl; OPT as its UDP size and DO bit only). In a truncated
// answer only the number of records in each section is compared.
type Answer struct {
	Err        string // the exchange failed (timeout, …)
	Rcode      string
	Flags      string // "aa tc ra", those set
	Question   string
	Answer     []string
	Authority  []string
	Additional []string
}

func normalize(m *dns.Msg, anyTTL bool) Answer {
	a := Answer{Rcode: dns.RcodeToString[m.Rcode]}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionAvailable, "ra"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	a.Flags = strings.Join(flags, " ")
	var qs []string
	for _, q := range m.Question {
		qs = append(qs, strings.TrimPrefix(q.String(), ";"))
	}
	a.Question = strings.ReplaceAll(strings.Join(qs, "; "), "\t", " ")
	a.Answer = rrSet(m.Answer, anyTTL)
	a.Authority = rrSet(m.Ns, anyTTL)
	a.Additional = rrSet(m.Extra, anyTTL)
	if m.Truncated {
		a.Answer = truncated(a.Answer)
		a.Authority = truncated(a.Authority)
		a.Additional = truncated(a.Additional)
	}
	return a
}

// truncated reduces the section of a truncated answer to its OPT and a
// count: which records fit is each server's choice (loadbalance shuffles
// them first), how many fit is compared.
func truncated(rrs []string) []string {
	var out []string
	n := 0
	for _, rr := range rrs {
		if strings.HasPrefix(rr, "OPT ") {
			out = append(out, rr)
			continue
		}
		n++
	}
	if n > 0 {
		out = append(out, fmt.Sprintf("(%d records; truncated, so not compared one by one)", n))
	}
	return out
}

func rrSet(rrs []dns.RR, anyTTL bool) []string {
	var out []string
	for _, rr := range rrs {
		if opt, ok := rr.(*dns.OPT); ok {
			out = append(out, fmt.Sprintf("OPT udp=%d do=%t", opt.UDPSize(), opt.Do()))
			continue
		}
		rr = dns.Copy(rr)
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		if anyTTL {
			h.Ttl = 0
		}
		if soa, ok := rr.(*dns.SOA); ok {
			soa.Serial = 0
		}
		out = append(out, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(out)
	return out
}

func (a Answer) String() string {
	if a.Err != "" {
		return "error: " + a.Err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s flags [%s]", a.Rcode, a.Flags)
	for _, s := range []struct {
		name string
		rrs  []string
	}{{"ANSWER", a.Answer}, {"AUTHORITY", a.Authority}, {"ADDITIONAL", a.Additional}} {
		for _, rr := range s.rrs {
			fmt.Fprintf(&b, "\n  %-10s %s", s.name, rr)
		}
	}
	return b.String()
}

// Equal compares everything but the question, which is compared apart.
func (a Answer) Equal(b Answer) bool {
	return a.String() == b.String() && a.Question == b.Question
}

// diff lists the parts of a and b that differ, one line each, prefixed
// "coredns" and "svcdisc".
func diff(c, s Answer) []string {
	var out []string
	if c.Err != "" || s.Err != "" {
		return []string{"coredns: " + c.String(), "svcdisc: " + s.String()}
	}
	if c.Question != s.Question {
		out = append(out, fmt.Sprintf("question: coredns %q, svcdisc %q", c.Question, s.Question))
	}
	if c.Rcode != s.Rcode {
		out = append(out, fmt.Sprintf("rcode: coredns %s, svcdisc %s", c.Rcode, s.Rcode))
	}
	if c.Flags != s.Flags {
		out = append(out, fmt.Sprintf("flags: coredns [%s], svcdisc [%s]", c.Flags, s.Flags))
	}
	for _, sec := range []struct {
		name string
		c, s []string
	}{{"answer", c.Answer, s.Answer}, {"authority", c.Authority, s.Authority}, {"additional", c.Additional, s.Additional}} {
		onlyC, onlyS := setDiff(sec.c, sec.s), setDiff(sec.s, sec.c)
		for _, rr := range onlyC {
			out = append(out, fmt.Sprintf("%s: only coredns: %s", sec.name, rr))
		}
		for _, rr := range onlyS {
			out = append(out, fmt.Sprintf("%s: only svcdisc: %s", sec.name, rr))
		}
	}
	return out
}

// setDiff is a minus b, as multisets.
func setDiff(a, b []string) []string {
	n := map[string]int{}
	for _, s := range b {
		n[s]++
	}
	var out []string
	for _, s := range a {
		if n[s] > 0 {
			n[s]--
			continue
		}
		out = append(out, s)
	}
	return out
}
