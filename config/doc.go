// Package config owns svcdisc's configuration language: it turns a Corefile
// (CoreDNS syntax) into a Config value, and nothing more. It opens no sockets,
// talks to no API server and wires no handlers; those belong to the packages
// that consume a Config.
//
// The syntax is CoreDNS's, read with CoreDNS's own Caddyfile tokenizer, so a
// Corefile written for CoreDNS parses the same way here as long as it sticks
// to the directives svcdisc implements (kubernetes, errors and log). Anything
// this version does not implement is refused with an error instead of being
// ignored, because silently dropping a line of a DNS server's configuration
// turns into wrong answers at runtime.
//
// Every error names the file and line it is about, as "FILE:LINE: message".
package config
