// Package config owns svcdisc's configuration language: it turns a Corefile
// (CoreDNS syntax) into a Config value, and nothing more. It opens no sockets,
// talks to no API server and wires no handlers; those belong to the packages
// that consume a Config.
//
// The syntax is CoreDNS's, read with CoreDNS's own Caddyfile parser (imports,
// globs and snippets included), so a Corefile written for CoreDNS parses the
// same way here as long as it sticks to the directives svcdisc implements
// (Order lists them, in the order their handlers run). Anything this version
// does not implement is refused with an error saying what to use instead,
// rather than ignored, because silently dropping a line of a DNS server's
// configuration turns into wrong answers at runtime. The few options CoreDNS
// itself once dropped (kubernetes upstream, proxy) are read with a warning.
//
// Every error names the file and line it is about, as "FILE:LINE: message".
package config
