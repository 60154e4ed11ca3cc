// Package benchmarks measures Courier side by side with a raw Go channel and
// with other in-process Go message buses, on the same workloads and in the
// same run. It is a module of its own, so that the peers never enter the
// core module's dependencies.
//
// Every workload checks that every message arrived before it reports a
// number. Run everything with
//
//	make bench-all      # from the repository root
//
// which writes RESULTS.md; see README.md in this folder.
package benchmarks
