// Package chatnode is the reference chat node: an Engine.IO v4/v3 server with Socket.IO chat on top,
// fanning messages out across nodes through Redis pub/sub. The demo, the tests and the benchmarks run it
// behind sidpin.
//
// The proxy must never import it: what both need of the wire format lives in package engineio.
package chatnode
