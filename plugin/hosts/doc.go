// Package hosts is the hosts directive's handler: it answers A, AAAA and
// PTR queries from a hosts(5) file and from entries written in the
// Corefile, re-reading the file when its modification time or size
// changes, as CoreDNS's hosts plugin does.
package hosts
