// Package chaos is the chaos directive's handler: TXT queries of class CH
// for the server's version, authors and host name (version.bind,
// version.server, authors.bind, hostname.bind, id.server). Other CH
// queries go on down the chain, where no handler answers them: forward
// refuses class CH, so a CH query never reaches an upstream.
package chaos

import (
	"context"
	"math/rand/v2"
	"os"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "chaos"

// Handler answers the CH TXT names.
type Handler struct {
	Version string
	Authors []string
	Next    plugin.Handler
}

// Name implements plugin.Handler.
func (c *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (c *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if st.Class != dns.ClassCHAOS || st.Type != dns.TypeTXT {
		return plugin.Next(ctx, c.Next, st)
	}
	var txt []string
	switch st.Name {
	case "version.bind.", "version.server.":
		txt = []string{c.Version}
	case "authors.bind.":
		txt = append(txt, c.Authors...)
		rand.Shuffle(len(txt), func(i, j int) { txt[i], txt[j] = txt[j], txt[i] })
	case "hostname.bind.", "id.server.":
		host, err := os.Hostname()
		if err != nil {
			host = "localhost"
		}
		txt = []string{host}
	default:
		return plugin.Next(ctx, c.Next, st)
	}
	m := st.Reply()
	hdr := dns.RR_Header{Name: st.Req.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassCHAOS}
	for _, t := range txt {
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{t}})
	}
	st.By = Name
	return m
}

var _ plugin.Handler = (*Handler)(nil)
