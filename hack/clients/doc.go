// Package clients holds the real-client tests: svcdisc on port 53 in a
// private network and mount namespace, resolved through a Pod's
// resolv.conf by the stub resolvers Pods really use (glibc's getent, musl's
// getaddrinfo, Go's pure resolver), every answer checked and the queries
// each lookup sent counted; and the same clients against svcdisc and
// CoreDNS side by side with autopath @kubernetes over a real API server
// (coredns_test.go). The package has no code besides its tests; see
// clients_test.go and the "Real clients" and "autopath" sections of
// README.md.
package clients
