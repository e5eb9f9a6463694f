// Package bufsize is the bufsize directive's handler: it caps the EDNS
// buffer size of queries, so that UDP replies (and the queries forward
// sends upstream) stay under a size that is not fragmented.
package bufsize

import (
	"context"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "bufsize"

// Handler sets the buffer size of EDNS queries.
type Handler struct {
	Size int
	Next plugin.Handler
}

// Name implements plugin.Handler.
func (b *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler. As in CoreDNS, a query's buffer size
// is set to Size whatever the client offered; a query without EDNS keeps
// the 512 bytes of plain DNS.
func (b *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if o := st.Req.IsEdns0(); o != nil {
		if int(o.UDPSize()) != b.Size {
			r := st.Req.Copy()
			r.IsEdns0().SetUDPSize(uint16(b.Size))
			st.Req = r
		}
		st.BufSize = b.Size
	}
	return plugin.Next(ctx, b.Next, st)
}

var _ plugin.Handler = (*Handler)(nil)
