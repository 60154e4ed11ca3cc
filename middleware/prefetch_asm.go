//go:build amd64 || arm64

package middleware

// prefetch asks the processor to start loading the cache line at addr and
// returns at once; it never faults, whatever addr is. Go has no way to say
// this, hence the two lines of assembly. [MemoryStore] uses it for the cold
// lines its next eviction will read (see memoryShard.evictLocked).
//
//go:noescape
func prefetch(addr uintptr)
