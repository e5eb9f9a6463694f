package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Print writes the case's table: one line per query with its status, and
// under each difference both answers and what differs. verbose adds both
// answers of every query.
func (r *Result) Print(w io.Writer, verbose bool) {
	fmt.Fprintf(w, "== %s: %d same, %d different, %d known differences, %d known svcdisc bugs", r.Case.Name,
		r.Count(Same)+r.Count(NowSame), r.Count(Different), r.Count(Known), r.Count(Bug))
	if n := r.Count(NowSame); n > 0 {
		fmt.Fprintf(w, ", %d listed differences now the same", n)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", row.Status, row.Query, summary(row))
	}
	tw.Flush()
	for _, row := range r.Rows {
		if row.Status == Same && !verbose {
			continue
		}
		fmt.Fprintf(w, "\n  -- %s: %s (asked %s)\n", row.Status, row.Query, row.Asked)
		if row.Reason != "" {
			fmt.Fprintf(w, "     listed: %s\n", row.Reason)
		}
		if row.Status != Same && row.Status != NowSame {
			for _, d := range diff(row.CoreDNS, row.Svcdisc) {
				fmt.Fprintf(w, "     %s\n", d)
			}
		}
		fmt.Fprintf(w, "     coredns: %s\n", indent(row.CoreDNS.String()))
		fmt.Fprintf(w, "     svcdisc: %s\n", indent(row.Svcdisc.String()))
	}
	fmt.Fprintln(w)
}

func summary(row Row) string {
	a := row.Svcdisc
	if row.Status == Same || row.Status == NowSame {
		return short(a)
	}
	return "coredns " + short(row.CoreDNS) + ", svcdisc " + short(a)
}

// short is the rcode, the TC flag and the number of answer records.
func short(a Answer) string {
	if a.Err != "" {
		return "error"
	}
	s := fmt.Sprintf("%s/%d", a.Rcode, len(a.Answer))
	if strings.Contains(a.Flags, "tc") {
		s += "/tc"
	}
	return s
}

func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n         ") }
