// Package clients holds the real-client test: svcdisc on port 53 in a
// private network and mount namespace, resolved through a Pod's
// resolv.conf by the stub resolvers Pods really use (glibc's getent, musl's
// getaddrinfo, Go's pure resolver), every answer checked and the queries
// each lookup sent counted. The package has no code besides its test; see
// clients_test.go and the "Real clients" section of README.md.
package clients
