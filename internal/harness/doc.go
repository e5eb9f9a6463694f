// Package harness holds what the benchmark, comparison and integration
// harnesses share about the processes they run: free loopback ports to give
// them, their resident memory from /proc, where the CoreDNS they compare
// against is, and the gate that runs, skips or fails a test by whether its
// peers (CoreDNS, a test API server) are there.
package harness
