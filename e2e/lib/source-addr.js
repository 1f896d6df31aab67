'use strict';
// Spreads the e2e clients over loopback source addresses, as real clients come from many addresses:
// sidpin's per-client limits (limits.per_client, on by default) then see many clients, not one
// address opening hundreds of sessions. Only 127.0.0.0/8 is used; Linux answers on all of it.
const http = require('node:http');

let next = 0;

// sourceOpts returns socket.io-client / engine.io-client options that make one client's connections
// (polling requests through the agent, the WebSocket through localAddress) come from its own
// address, 127.0.1.1 to 127.0.1.250 in turn.
function sourceOpts() {
  const localAddress = `127.0.1.${1 + (next++ % 250)}`;
  return { localAddress, agent: new http.Agent({ localAddress }) };
}

module.exports = { sourceOpts };
