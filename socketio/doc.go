// Package socketio is the Socket.IO packet codec used by the chat node: it
// encodes and decodes one Socket.IO packet (the payload of one Engine.IO
// "message" after the caller has stripped the Engine.IO type byte '4') and
// handles binary attachments.
//
// It speaks protocol v5 (socket.io-client v3/v4 over Engine.IO v4) and
// protocol v4 (socket.io-client v2 over Engine.IO v3); the two share one text
// form:
//
//	<type>[<nAttachments>-][<namespace>,][<ackId>][JSON]
//
// The v4-protocol additions are a namespace query on CONNECT
// ("0/admin?token=x," decodes to Namespace "/admin", Query "token=x") and a
// CONNECT_ERROR (ERROR in v4) payload that is a string as well as an object.
//
// What it owns:
//   - Decode validates a packet the way the reference parser does (type,
//     attachment count, namespace, ack id, payload shape per type, reserved
//     event names, binary placeholders) and returns ErrInvalidPacket
//     otherwise; Node closes the whole engine connection on such a packet.
//   - Append writes the exact bytes the reference encoder writes.
//   - JSON payloads stay raw ([]byte / json.RawMessage) so a server can echo
//     them byte for byte: Node's JSON.stringify neither reorders keys nor
//     HTML-escapes, and neither does this package.
//   - Binary: EncodeEvent/EncodeAck turn []byte arguments into placeholders
//     plus attachments; Reconstructor collects the attachments that follow a
//     BINARY_EVENT/BINARY_ACK and resolves top-level placeholders.
//
// Binary in a chat server, in short:
//   - Echo exactly: keep the decoded Packet (its Data still holds the
//     placeholders), change Namespace or ID if needed, send Append(nil, p)
//     followed by r.Attachments() in order.
//   - Read a []byte argument: r.Args() gives one Value per array element;
//     a top-level placeholder has IsBinary set and its bytes in Binary.
//     Placeholders nested deeper stay as raw JSON in Raw and refer to
//     r.Attachments() by index.
//   - Emit []byte: pass []byte values (at any depth in slices and maps) to
//     EncodeEvent; send Append(nil, p) then each returned attachment.
//
// What it must not do: I/O, sessions, namespaces or rooms, Engine.IO framing
// (the '4' prefix, polling payloads, base64 "b" records) or any decision about
// what to do with a packet. Decoded packets alias the input bytes; callers
// that reuse their read buffers must copy.
package socketio
