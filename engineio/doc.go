// Package engineio owns the Engine.IO wire format, protocol versions 3 and 4:
// single packets as carried by WebSocket frames, the polling payload
// encodings (v4 record-separated text, v3 length-prefixed strings, v3 XHR2
// binary), JSONP wrapping, the open packet's JSON, and sniffing the session id
// out of a polling handshake answer.
//
// It is shared by the chat node (an Engine.IO server) and by the sticky
// proxy, so it must stay free of I/O, HTTP, goroutines and session state:
// every function maps bytes to packets or packets to bytes and nothing else.
// Compression, transports, timers and routing belong to the callers.
//
// Encoders follow the append convention (Append…(dst, …) []byte) so callers
// can reuse buffers. Decoders return packets whose Data aliases the input
// wherever the wire form allows it; callers that keep Data beyond the life of
// the input buffer must copy it. Malformed input is reported with an error
// wrapping ErrInvalidPacket or ErrInvalidPayload, never with a panic.
package engineio
