// Package httpwire is sidpin's own HTTP/1.1 wire parsing, for the event loop that owns client and
// node connections itself (issue 13): request heads from clients, response heads from nodes,
// chunked bodies both ways, and the heads sidpin writes. It is strict, bounded, incremental and
// allocation-free, and it does no I/O: bytes in, a verdict and offsets out.
//
// # What it owns
//
//   - ParseRequest and ParseResponse parse a head from the start of a buffer. They are
//     incremental: ErrNeedMore asks for more bytes, and the next call resumes where the last one
//     stopped, so each byte is looked at once however the head arrives (a client sending one byte
//     per segment costs O(n), not O(n²)). The buffer may move between calls (a grown copy), as
//     long as its first bytes stay the same. Every refusal is decided by the bytes up to the
//     offending one, so a head gets the same answer whole or in any pieces, and junk is refused at
//     its first wrong byte: a slowloris sending junk is cut at once, never held until its line or
//     head ends. The result aliases the buffer: header lines are offsets into it, so a Request or
//     Response holds no pointer per field: a Request is under 2 KB with room for 100 fields.
//   - ChunkedReader finds the payload and the end of a chunked body fed in pieces, so the caller
//     can pass the raw bytes on unchanged while a scanner sees the payload.
//   - AppendRequestHead and AppendResponseHead write the heads sidpin sends, from parsed fields,
//     leaving out the hop-by-hop headers.
//
// Routing, path normal form (proxy/classify.go), sids, bodies' sizes and timeouts belong to the
// callers.
//
// # What it refuses
//
// Each refusal is its own Err… value; Status maps it to the answer (400, 431, 501, 505).
//
//   - Line ends other than CRLF. A bare LF is refused everywhere (ErrBareLF), although RFC 9112
//     §2.2 lets a recipient accept it: on purpose, since a proxy that accepts it in front of a
//     node that does not (or the other way round) frames the stream differently from its peer.
//     A CR not followed by LF is ErrBareCR.
//   - A request line that is not method SP target SP version: a token method, one SP each,
//     a target of visible ASCII but '#' (ErrBadTarget) in origin-form ("/path?query") or http(s)
//     absolute-form with a host[:port] authority and a path. "*", authority-form (CONNECT), other
//     schemes and userinfo are refused. The version is exactly HTTP/1.0 or HTTP/1.1; another
//     HTTP/d.d is ErrVersion (505). Empty lines before the request line are skipped (§2.2).
//   - A status line that does not begin "HTTP/1.d ddd" with a status of 100-599: ErrNotHTTP, at
//     the first wrong byte. It is the one error that says a node does not speak HTTP; a head too
//     large (IsLimit) is not the node's fault, since a client can make a node echo a huge URL.
//   - Header lines whose name is not a token (ErrBadHeaderName), with whitespace before the colon
//     (ErrSpaceBeforeColon, the classic way to hide a Transfer-Encoding), a control byte other than
//     HTAB in the value (ErrBadHeaderValue), or starting with whitespace (obs-fold, ErrObsFold):
//     never joined.
//   - Framing that two parsers could read differently: a second Content-Length, even equal, and
//     any value that is not 1*DIGIT or is over 2^62; a Transfer-Encoding other than one, exactly
//     "chunked" (a list, identity, gzip: 501; two lines: 400); Transfer-Encoding in HTTP/1.0.
//     Content-Length with chunked is reported, both set (Header.ContentLength, Header.Chunked):
//     the body is chunked, and the caller closes the connection after it (RFC 9112 §6.3).
//   - In requests: no Host in HTTP/1.1, two Hosts, a Host that is empty or not host[:port] bytes
//     ('%' included: net/http decodes a percent-encoded authority, fasthttp does not), and an
//     absolute-form target whose authority is not the Host (fasthttp reports the Host and
//     net/http the authority; RFC 9112 §3.2.2 has a server use the authority).
//   - A Connection option that is not a token or that names Content-Length or Host (RFC 9110
//     §7.6.1 forbids listing a field meant for every recipient; honouring it would forward a body
//     without its length), and a second Upgrade.
//   - Chunk-size lines that are not 1-16 hex digits (int64), optional ";" extensions of visible
//     bytes, CRLF; whitespace after the size (RFC 9112 allows it before ';', but net/http and
//     Node's llhttp refuse it); chunk data not followed by CRLF; trailers that break the header
//     rules.
//   - Limits, each checked as the bytes arrive: the head (Limits.MaxHeaderBytes, 16 KiB), one line
//     (MaxLineBytes, 8 KiB), the header lines (MaxHeaders, at most MaxHeaderFields = 100), a
//     chunk-size line (MaxChunkLineBytes, 1 KiB), the trailers (MaxTrailerBytes, 8 KiB). A limit
//     reached with the buffer full is reported at once, so a buffer of MaxHeaderBytes suffices.
//
// # Stricter than fasthttp
//
// Besides what fasthttp also refuses (a space before a colon in requests, two Content-Lengths or
// Transfer-Encodings, Transfer-Encoding in an HTTP/1.0 request, an HTTP/1.1 request without
// Host), this package refuses what fasthttp accepts: bare LF, obs-fold, a space inside a header
// name, raw non-ASCII or '#' in a target, "*" and authority-form targets, schemes other than
// http(s), an absolute-form target without a path or with another host than Host, a Host or
// authority that is empty or holds '/', '@', '%' or space, versions other than 1.0 and 1.1 (fasthttp takes any HTTP/d.d),
// Transfer-Encoding: identity, two Upgrades, a Connection option that is not a token or names
// Content-Length or Host; in answers,
// Transfer-Encoding in HTTP/1.0 (fasthttp ignores it), a status outside 100-599, extra spaces
// in the status line, empty lines before it, a space before a colon. Against net/http's chunked
// reader: whitespace after the size, control bytes in extensions, obs-fold or bare LF in
// trailers. TestStricterThanFasthttp… keeps this list true, and the fuzz tests check the other
// direction: a head or body accepted here is read the same by fasthttp and net/http.
package httpwire
