// Package harness holds what the benchmark and comparison harnesses under
// hack/ share about the processes they run: free loopback ports to give
// them, and their resident memory from /proc.
package harness
