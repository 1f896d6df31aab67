// Package discovery takes pools' nodes from DNS (pools[].discovery): the A/AAAA records of a name
// with a port (a Kubernetes headless Service), or SRV records. A Watcher resolves each pool's name
// at an interval, never sooner than the records' TTL, with a small DNS client of its own (Go's
// resolver does not give TTLs); the proxy applies the sets it finds as a reload does. A resolution
// that fails or finds nothing keeps the nodes found before: DNS never empties a pool. Node names are
// derived from the addresses, so every instance sharing a pin table names a node alike.
package discovery
