// Package proxy is the client-facing fasthttp server. For every request (never per TCP connection) it
// picks the pool, classifies the request (plain HTTP, Engine.IO handshake, Engine.IO request with a sid),
// learns the sid from a handshake answer, forwards polling requests to the pinned node, hands WebSocket
// upgrades to package upgrade, keeps headers clean and answers errors the way Engine.IO does.
//
// It must not hold pin state of its own (package affinity does) nor choose nodes (package backends does).
package proxy
