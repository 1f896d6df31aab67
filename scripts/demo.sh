#!/usr/bin/env bash
# make demo: three chat nodes on 127.0.0.1:3101-3103 and sidpin on 127.0.0.1:3200 (configs/demo.yaml,
# embedded memory pin table, no Redis). Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENT_JS=e2e/node_modules/socket.io-client/dist/socket.io.min.js
PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

NODES=(http://127.0.0.1:3101 http://127.0.0.1:3102 http://127.0.0.1:3103)
for i in 0 1 2; do
  # Without Redis the nodes pass chat messages to each other over HTTP (-peers).
  others=$(printf '%s\n' "${NODES[@]}" | grep -v "${NODES[$i]}" | paste -sd, -)
  bin/chatnode -listen "${NODES[$i]#http://}" -name "node$((i + 1))" -peers "$others" -client-js "$CLIENT_JS" &
  PIDS+=($!)
done
bin/sidpin -config configs/demo.yaml &
PIDS+=($!)

sleep 1
for pid in "${PIDS[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "demo: a process exited early (see above)"; exit 1; }
done
cat <<MSG

  sidpin demo is running: three chat nodes behind sidpin, pins in memory (no Redis).
    chat page:  http://127.0.0.1:3200/            (open two tabs with "polling only" ticked: each tab
                                                   shows the node its session is pinned to, and they chat)
    nodes:      http://127.0.0.1:3101/ .. :3103/  (direct, without sidpin)
    admin:      http://127.0.0.1:3201/            (sidpin's operator page: nodes, pins, drain buttons;
                                                   no token on loopback in the demo)
  Ctrl-C stops it.

MSG
wait -n "${PIDS[@]}"
