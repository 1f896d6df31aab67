// Package proxy is the client-facing fasthttp server. For every request (never per TCP connection) it
// picks the pool, classifies the request (plain HTTP, Engine.IO handshake, Engine.IO request with a sid),
// learns the sid from a handshake answer, forwards polling requests to the pinned node, hands WebSocket
// upgrades to package upgrade, keeps headers clean and answers errors the way Engine.IO does.
//
// Files: dispatch.go is the whole decision for one request, top down; classify.go reads a request;
// handshake.go, session.go, websocket.go and plain.go serve one kind each; exchange.go is a request's
// trip to a node and its answer's way back (closewatch.go watches it for the session's end);
// answers.go holds the answers sidpin gives itself; headers.go the header hygiene; proxy.go, drain.go
// and nodes.go the lifecycle (start, reload, drain, shutdown); kick.go an operator's kick.
//
// It must not hold pin state of its own (package affinity does) nor choose nodes (package backends does).
package proxy
