#!/usr/bin/env bash
# make test: every check and test of sidpin, against a throwaway redis-server that this script starts on a
# free loopback port and always stops (by PID) when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.x; pinned so every machine runs the same checks

log() { printf '\n== %s\n' "$*"; }

# ensure_deb PACKAGE PROGRAM WHY: installs Debian's PACKAGE with apt-get when PROGRAM (a path) is not
# there and we are root; otherwise says what to install and stops.
ensure_deb() {
  local pkg=$1 prog=$2 why=$3
  [ -x "$prog" ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "$prog is missing: installing Debian's $pkg ($why)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    return
  fi
  echo "make test needs $prog, $why (apt-get install $pkg); run as root to have it installed" >&2
  exit 1
}

ensure_redis_server() { ensure_deb redis-server "$(command -v redis-server || echo /usr/bin/redis-server)" "the throwaway Redis of the tests"; }
ensure_chromium() { ensure_deb chromium /usr/bin/chromium "driven by playwright-core in e2e/tests/admin-page.test.js"; }
ensure_haproxy() { ensure_deb haproxy /usr/sbin/haproxy "run as a child process by e2e/tests/sidpin-faults.test.js, never the service"; }
ensure_dnsmasq() { ensure_deb dnsmasq-base /usr/sbin/dnsmasq "the DNS server of the discovery tests (internal/testdnsmasq), started on a free loopback port; the binary only, no service"; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

redis_answers() { # port
  local reply=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'PING\r\n' >&3
  read -r -t 1 reply <&3 || true
  exec 3>&- 3<&-
  [[ "$reply" == "+PONG"* ]]
}

# redis_commands_processed prints how many commands the throwaway redis-server has served.
redis_commands_processed() { # port
  local line total=""
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'INFO stats\r\n' >&3
  while read -r -t 1 line <&3; do
    case "$line" in total_commands_processed:*) total="${line#*:}"; total="${total%$'\r'}"; break ;; esac
  done
  exec 3>&- 3<&-
  echo "$total"
}

REDIS_PID=""
WORK_DIR="$(mktemp -d)"
cleanup() {
  if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
    kill "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK_DIR"
}
trap cleanup EXIT INT TERM

start_redis() {
  ensure_redis_server
  local port
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK_DIR" \
    --logfile "$WORK_DIR/redis.log" --daemonize no &
  REDIS_PID=$!
  for _ in $(seq 1 100); do
    redis_answers "$port" 2>/dev/null && break
    kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server exited:"; cat "$WORK_DIR/redis.log"; exit 1; }
    sleep 0.05
  done
  redis_answers "$port" || { echo "redis-server on port $port does not answer"; exit 1; }
  export SIDPIN_TEST_REDIS="127.0.0.1:$port"
  log "throwaway redis-server pid $REDIS_PID at $SIDPIN_TEST_REDIS"
}

ensure_staticcheck() {
  local bin
  bin="$(go env GOPATH)/bin/staticcheck"
  if ! [ -x "$bin" ] || ! "$bin" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
    log "installing staticcheck $STATICCHECK_VERSION"
    go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  fi
  STATICCHECK="$bin"
}

start_redis

log "go vet"
go vet ./...

log "staticcheck"
ensure_staticcheck
"$STATICCHECK" ./...

log "go test -race"
go test -race -count=1 ./...
echo "throwaway redis-server at $SIDPIN_TEST_REDIS has served $(redis_commands_processed "${SIDPIN_TEST_REDIS##*:}") commands from the Go tests"

ensure_chromium
ensure_haproxy
ensure_dnsmasq
log "e2e (npm packages from e2e/package-lock.json)"
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
go build -o "$WORK_DIR/bin/" ./cmd/...
(cd e2e && SIDPIN_BIN_DIR="$WORK_DIR/bin" npm test)

log "all tests passed"
