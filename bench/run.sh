#!/usr/bin/env bash
# Whole-process proxy benchmark: the same Engine.IO echo load sent to a chatnode directly and through
# sidpin, HAProxy and nginx. Measures throughput/latency (bench/loadgen) and the proxy process's CPU
# seconds, RSS, descriptors (/proc), goroutines (sidpin's /metrics) and syscalls (perf stat, else strace).
# Writes bench/results/latest.md. See bench/README.md.
#
#   bench/run.sh                      # every target, ~7 minutes
#   TARGETS="direct sidpin" bench/run.sh
#   POLL_C=50 POLL_N=4000 WS_C=50 WS_N=4000 IDLE_N=3000 IDLE_HOLD=30 HELD_N=3000 HELD_HOLD=12 HS_N=6000 ROUNDS=3 bench/run.sh
#
# Each target gets its own fresh chatnode (and proxy); all are started first. Then:
#   1. idle phase, target after target, on the still fresh proxies (RSS before / while holding);
#   2. held phase, target after target, each on a proxy (and node) started afresh for it: HELD_N polling
#      GETs held by the node (RSS, goroutines, fds before / while holding), then all answered;
#   3. ROUNDS rounds of { polling, ws, handshakes } over the targets, interleaved (the order rotates each
#      round), so that a drifting background load hits every target alike; the median round is reported;
#   4. syscall round, target after target: one shorter polling run with the proxy's syscalls counted.
# Only loopback addresses are used; every process this script starts is stopped by PID on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
OUT=${OUT:-$BENCH/results/latest.md}

TARGETS=${TARGETS:-"direct sidpin haproxy nginx"}
POLL_C=${POLL_C:-50}        # polling virtual clients
POLL_N=${POLL_N:-4000}      # HTTP requests per polling client (POST+GET pairs)
WS_C=${WS_C:-50}            # echo WebSockets
WS_N=${WS_N:-4000}          # echo round trips per WebSocket
IDLE_N=${IDLE_N:-3000}      # idle WebSockets held
SOURCES=${SOURCES:-200}     # loopback source addresses the load comes from (sidpin's per-client limits see many clients)
IDLE_HOLD=${IDLE_HOLD:-30}  # seconds they are held (> 25 s, so one server ping crosses each of them)
IDLE_ROUNDS=${IDLE_ROUNDS:-2} # idle phases per target, in alternating target order; CPU is their mean
HELD_N=${HELD_N:-3000}      # polling GETs held by the node at once (each costs a proxy 2 descriptors)
HELD_HOLD=${HELD_HOLD:-12}  # seconds they are held (open + hold + release must stay below the node's pingInterval)
HS_C=${HS_C:-50}            # handshake phase: new clients at a time
HS_N=${HS_N:-6000}          # handshake phase: new sessions in all (per round)
SC_N=${SC_N:-1000}          # syscall round: HTTP requests per polling client (POLL_C clients)
SYSCALLS=${SYSCALLS:-auto}  # how syscalls are counted: auto (perf if it works, else strace), perf, strace, none
NOFILE_MAX=${NOFILE_MAX:-20000} # no process of the bench may hold more descriptors than this
ROUNDS=${ROUNDS:-3}         # polling+ws rounds per target; medians are reported
SIZE=${SIZE:-64}            # message payload bytes
OTHER_MAX=${OTHER_MAX:-15}  # a phase during which other processes used more of the CPUs (%) is run again,
RETRIES=${RETRIES:-2}       # at most this many times, after waiting
QUIET_WAIT=${QUIET_WAIT:-30} # at most this many seconds for a quiet second
PING_INTERVAL=${PING_INTERVAL:-25s}
PING_TIMEOUT=${PING_TIMEOUT:-20s}
EIO_PATH=/engine.io/
BUILD=${BUILD:-1}           # 0: use the binaries as they are
BIN_DIR=${BIN_DIR:-$ROOT/bin}  # where bin/sidpin and bin/chatnode are (BUILD=1 builds $ROOT/bin only)
BENCH_INSTALL=${BENCH_INSTALL:-0}  # 1: apt-get install haproxy/nginx when missing (root only)

CMDLINE="$(printf '%q ' "$0" "$@")"
ENVLINE="TARGETS=\"$TARGETS\" POLL_C=$POLL_C POLL_N=$POLL_N WS_C=$WS_C WS_N=$WS_N IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD IDLE_ROUNDS=$IDLE_ROUNDS HELD_N=$HELD_N HELD_HOLD=$HELD_HOLD HS_C=$HS_C HS_N=$HS_N SC_N=$SC_N SYSCALLS=$SYSCALLS ROUNDS=$ROUNDS SIZE=$SIZE OTHER_MAX=$OTHER_MAX RETRIES=$RETRIES"

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

(( IDLE_HOLD >= 10 )) || die "IDLE_HOLD must be at least 10 (seconds)"
(( ROUNDS >= 1 )) || die "ROUNDS must be at least 1"
(( HELD_HOLD >= 8 )) || die "HELD_HOLD must be at least 8 (seconds)"
# A held GET is answered by the node's ping pingInterval after the handshake: the opening (a few s), the
# hold and the release must fit before it, or the phase measures pings instead of held polls.
if [[ $PING_INTERVAL =~ ^([0-9]+)s$ ]] && (( HELD_HOLD + 8 > BASH_REMATCH[1] )); then
  die "HELD_HOLD=$HELD_HOLD is too long for the node's ping interval $PING_INTERVAL (at most $(( BASH_REMATCH[1] - 8 )))"
fi

# ---------------------------------------------------------------------------------------------- setup
# Sockets: an idle proxied WebSocket or a held poll costs the proxy 2 descriptors (the load generator 1);
# raise the soft limit to the hard one, but not above NOFILE_MAX.
HARD=$(ulimit -Hn)
if [[ $HARD == unlimited ]] || (( HARD > NOFILE_MAX )); then HARD=$NOFILE_MAX; fi
ulimit -n "$HARD" 2>/dev/null || true
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=$NOFILE_MAX
if (( NOFILE < 4 * IDLE_N + 1000 )); then
  new=$(( (NOFILE - 1000) / 4 ))
  (( new > 0 )) || die "ulimit -n is $NOFILE: too low"
  log "ulimit -n is $NOFILE: IDLE_N lowered from $IDLE_N to $new"
  IDLE_N=$new
fi
if (( NOFILE < 2 * HELD_N + 1000 )); then
  new=$(( (NOFILE - 1000) / 2 ))
  log "ulimit -n is $NOFILE: HELD_N lowered from $HELD_N to $new"
  HELD_N=$new
fi
(( HS_N <= 90 * SOURCES )) || log "warning: HS_N=$HS_N handshakes from $SOURCES addresses exceed sidpin's default burst of 100 per address: expect 429s (errors)"

TMP=$(mktemp -d /tmp/sidpin-bench.XXXXXX)
chmod 755 "$TMP"   # nginx workers may run as another user
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop_pid PID: stops a process this script started, and forgets it (so that a PID reused later by
# another program is never signalled by the cleanup).
stop_pid() {
  local pid=$1 i keep=()
  for i in "${PIDS[@]}"; do [[ $i == "$pid" ]] || keep+=("$i"); done
  PIDS=("${keep[@]}")
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

if [[ $BUILD == 1 && $BIN_DIR == "$ROOT/bin" ]]; then
  log "building bin/ (make build) and the load generator"
  make -C "$ROOT" -s build >&2
fi
[[ -x $BIN_DIR/chatnode ]] || die "no $BIN_DIR/chatnode (make build)"
LG=$TMP/loadgen
(cd "$ROOT" && go build -o "$LG" ./bench/loadgen)

CLK_TCK=$(getconf CLK_TCK)

# pct_more A B: how much more B is than A, in percent ("+2.1%").
pct_more() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%+.1f%%", (b - a) / a * 100; else print "–" }'; }

# --------------------------------------------------------------------------------------- /proc helpers
# The PID and its direct children (nginx: master + workers; HAProxy and sidpin: one process).
tree_pids() {
  local root=$1
  echo "$root"
  awk -v root="$root" '{ pid=$1; s=$0; sub(/^.*\) /, "", s); split(s, f, " "); if (f[2] == root) print pid }' \
    /proc/[0-9]*/stat 2>/dev/null || true
}
# utime+stime in clock ticks, summed over the processes (all threads included).
cpu_ticks() {
  local pid t=0 v
  for pid in "$@"; do
    v=$(awk '{ s=$0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$pid/stat" 2>/dev/null || echo 0)
    t=$(( t + v ))
  done
  echo "$t"
}
# VmRSS in KiB, summed over the processes.
rss_kib() {
  local pid t=0 v
  for pid in "$@"; do
    v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    t=$(( t + ${v:-0} ))
  done
  echo "$t"
}
# Open descriptors, summed over the processes.
fd_count() {
  local pid t=0
  for pid in "$@"; do t=$(( t + $(ls "/proc/$pid/fd" 2>/dev/null | wc -l) )); done
  echo "$t"
}
# goroutines TARGET: sidpin's go_goroutines from its admin listener's /metrics (empty for the others).
goroutines() {
  local a=${ADMIN[$1]:-}
  [[ -n $a ]] || return 0
  if command -v curl >/dev/null; then
    curl -s -m 5 "http://$a/metrics"
  else
    (exec 3<>"/dev/tcp/${a%:*}/${a##*:}" && printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$a" >&3 && timeout 5 cat <&3)
  fi 2>/dev/null | awk '/^go_goroutines / { printf "%d", $2 }'
}
max() { if (( $1 > $2 )); then echo "$1"; else echo "$2"; fi; }
# Busy share of all CPUs over a second, from /proc/stat (before anything of ours runs).
busy_pct() {
  local a b
  a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.0f", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }'
}
# Busy ticks of the whole machine (all CPUs), from /proc/stat.
sys_ticks() { awk '/^cpu / { print $2+$3+$4+$7+$8+$9 }' /proc/stat; }
# other_pct SYS_TICKS OURS_TICKS LOADGEN_CPU_S WALL_S: share of the CPUs used by neither the load
# generator, the proxy nor the node during a phase (kernel softirq work of the loopback included).
other_pct() { awk "BEGIN { v = 100 * ($1 - $2 - $3 * $CLK_TCK) / ($4 * $(nproc) * $CLK_TCK); printf \"%.0f\", (v < 0 ? 0 : v) }"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# ------------------------------------------------------------------------------------------ targets
have_sidpin() { local h; h=$("$BIN_DIR/sidpin" -h 2>&1 || true); grep -q -- '-to' <<<"$h"; }
ensure_pkg() {
  local bin=$1
  command -v "$bin" >/dev/null && return 0
  if [[ $BENCH_INSTALL == 1 && $EUID == 0 ]] && command -v apt-get >/dev/null; then
    log "installing $bin from Debian"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$bin" >&2
  fi
  command -v "$bin" >/dev/null
}

declare -A R      # R[target.key] (.key.N: round N)
declare -A ADDR   # where the load goes
declare -A PPIDS  # the proxy's PIDs (space-separated); empty for direct
declare -A NODE   # the chatnode's PID
declare -A ADMIN  # sidpin's admin listener (go_goroutines from /metrics)
declare -A LGTLS  # "-tls" for a target whose clients speak TLS (sidpin-tls)
RAW=()

# start_target TARGET: a fresh chatnode, and the proxy in front of it.
start_target() {
  local target=$1 ports node_port proxy_port node_pid pid dir=$TMP/$1
  mkdir -p "$dir"; chmod 755 "$dir"
  mapfile -t ports < <("$LG" -mode freeport -c 3)
  node_port=${ports[0]}; proxy_port=${ports[1]}

  "$BIN_DIR/chatnode" -conformance -listen "127.0.0.1:$node_port" \
    -ping-interval "$PING_INTERVAL" -ping-timeout "$PING_TIMEOUT" -log-level warn >"$dir/chatnode.log" 2>&1 &
  node_pid=$!
  PIDS+=("$node_pid")
  wait_port "$node_port" "$node_pid" || die "$target: chatnode did not start: $(tail -3 "$dir/chatnode.log")"
  NODE[$target]=$node_pid

  if [[ $target == direct ]]; then
    ADDR[$target]=127.0.0.1:$node_port
    PPIDS[$target]=""
    log "$target: node 127.0.0.1:$node_port (pid $node_pid)"
    return
  fi
  case $target in
    sidpin|sidpin-tls|sidpin-log)
      # The quick start's config (-listen -to -path) plus an admin listener, for go_goroutines. In its own
      # directory: sidpin watches the config file's directory, and its log is written next to it.
      # sidpin-tls: the same with TLS on the client listener (a self-signed P-256 certificate made here).
      # sidpin-log: the same with the session log on (log.sessions: one line per ended session, to the
      # log file like every other line).
      mkdir -p "$dir/conf"
      ADMIN[$target]=127.0.0.1:${ports[2]}
      sed -e "s#@LISTEN@#127.0.0.1:$proxy_port#g" -e "s#@BACKEND@#127.0.0.1:$node_port#g" \
        -e "s#@ADMIN@#${ADMIN[$target]}#g" -e "s#@PATH@#$EIO_PATH#g" "$BENCH/proxies/sidpin.yaml.tmpl" >"$dir/conf/sidpin.yaml"
      if [[ $target == sidpin-tls ]]; then
        [[ -f $dir/cert.pem ]] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
          -subj /CN=sidpin.bench -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
        printf 'tls:\n  cert_file: %s\n  key_file: %s\n' "$dir/cert.pem" "$dir/key.pem" >>"$dir/conf/sidpin.yaml"
        LGTLS[$target]=-tls
      fi
      if [[ $target == sidpin-log ]]; then
        printf 'log:\n  sessions: true\n' >>"$dir/conf/sidpin.yaml"
      fi
      "$BIN_DIR/sidpin" -config "$dir/conf/sidpin.yaml" >"$dir/sidpin.log" 2>&1 &
      ;;
    haproxy)
      sed -e "s#@LISTEN@#127.0.0.1:$proxy_port#g" -e "s#@BACKEND@#127.0.0.1:$node_port#g" -e "s#@TMP@#$dir#g" \
        -e "s#@MAXCONN@#$(( (NOFILE - 200) / 2 ))#g" "$BENCH/proxies/haproxy.cfg.tmpl" >"$dir/haproxy.cfg"
      haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
      ;;
    nginx)
      sed -e "s#@LISTEN@#127.0.0.1:$proxy_port#g" -e "s#@BACKEND@#127.0.0.1:$node_port#g" -e "s#@TMP@#$dir#g" \
        -e "s#@NOFILE@#$NOFILE#g" -e "s#@WORKERCONN@#$(( NOFILE - 200 ))#g" \
        "$BENCH/proxies/nginx.conf.tmpl" >"$dir/nginx.conf"
      nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >"$dir/nginx.log" 2>&1 &
      ;;
  esac
  pid=$!
  PIDS+=("$pid")
  wait_port "$proxy_port" "$pid" || die "$target: proxy did not start: $(tail -5 "$dir/"*.log)"
  sleep 0.3   # nginx workers
  ADDR[$target]=127.0.0.1:$proxy_port
  PPIDS[$target]=$(tree_pids "$pid" | tr '\n' ' ')
  log "$target: node 127.0.0.1:$node_port (pid $node_pid), proxy ${ADDR[$target]} (pids ${PPIDS[$target]})"
}

stop_target() {
  local p
  for p in ${PPIDS[$1]}; do stop_pid "$p"; done
  stop_pid "${NODE[$1]}"
}

# Warm-up (also checks the path end to end): not measured.
warm_up() {
  local t=$1
  "$LG" -mode polling -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c 4 -n 200 -size "$SIZE" -max-duration 30s >/dev/null \
    || die "$t: polling warm-up failed"
  "$LG" -mode ws -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c 4 -n 200 -size "$SIZE" -max-duration 30s >/dev/null \
    || die "$t: ws warm-up failed"
}

# Idle WebSockets, on a fresh (warmed-up) proxy: RSS before, and while they are held. Round 2 and later
# (IDLE_ROUNDS) count CPU only: the proxy is no longer fresh, its RSS would show memory it kept.
idle_phase() {
  local t=$1 round=${2:-1} pids out lgpid i r0 r1 r2 c0 c1 line
  read -ra pids <<<"${PPIDS[$t]}"
  sleep 1
  r0=$(rss_kib "${pids[@]}"); c0=$(cpu_ticks "${pids[@]}")
  out=$TMP/idle-$t-$round.out
  "$LG" -mode idle -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$IDLE_N" -hold "${IDLE_HOLD}s" -max-duration 120s >"$out" 2>"$out.err" &
  lgpid=$!
  for i in $(seq 1200); do grep -q '^READY' "$out" && break; kill -0 "$lgpid" 2>/dev/null || break; sleep 0.1; done
  grep -q '^READY' "$out" || die "$t: idle phase did not get ready: $(cat "$out.err")"
  sleep 3;                    r1=$(rss_kib "${pids[@]}")
  sleep $(( IDLE_HOLD - 6 )); r2=$(rss_kib "${pids[@]}")   # after the 25 s server pings went through
  R[$t.fds]=0
  for i in "${pids[@]}"; do R[$t.fds]=$(( ${R[$t.fds]} + $(ls "/proc/$i/fd" 2>/dev/null | wc -l) )); done
  wait "$lgpid" || die "$t: idle phase failed: $(cat "$out.err")"
  c1=$(cpu_ticks "${pids[@]}")
  line=$(grep '^RESULT' "$out"); RAW+=("$t $line")
  R[$t.idle_cpu.$round]=$(calc '%.2f' "($c1 - $c0) / $CLK_TCK")
  if (( round > 1 )); then
    log "$t: idle round $round: ${R[$t.idle_cpu.$round]} s of CPU"
    sleep 2
    return
  fi
  R[$t.idle_opened]=$(kv opened "$line"); R[$t.idle_alive]=$(kv alive_at_end "$line")
  R[$t.idle_errors]=$(kv errors "$line")
  (( r2 > r1 )) && r1=$r2
  R[$t.rss0]=$r0; R[$t.rss1]=$r1
  R[$t.kib_per_ws]=$(calc '%.1f' "($r1 - $r0) / ${R[$t.idle_opened]}")
  log "$t: idle ${R[$t.idle_alive]}/$IDLE_N alive, RSS $((r0 / 1024)) → $((r1 / 1024)) MiB = ${R[$t.kib_per_ws]} KiB per WebSocket, ${R[$t.fds]} fds"
  sleep 2   # let the closed idle sockets drain
}

# Held polls, on a proxy (and node) started afresh for this phase (a process that has just freed the idle
# phase's memory would reuse it, and show less): RSS, goroutines (sidpin) and descriptors before, and
# while HELD_N polling GETs are held by the node; then every GET is answered (the load generator releases
# each with a POST of a message) and counted.
held_phase() {
  local t=$1 pids out lgpid i r0 r1 r2 g0 g1 g2 f0 f1 f2 c0 c1 c2 c3 w1 w2 line
  stop_target "$t"; start_target "$t"; warm_up "$t"
  read -ra pids <<<"${PPIDS[$t]}"
  sleep 1
  r0=$(rss_kib "${pids[@]}"); g0=$(goroutines "$t"); f0=$(fd_count "${pids[@]}"); c0=$(cpu_ticks "${pids[@]}")
  out=$TMP/held-$t.out
  "$LG" -mode held -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$HELD_N" -hold "${HELD_HOLD}s" -size "$SIZE" -max-duration 120s >"$out" 2>"$out.err" &
  lgpid=$!
  for i in $(seq 1200); do grep -q '^READY' "$out" && break; kill -0 "$lgpid" 2>/dev/null || break; sleep 0.1; done
  grep -q '^READY' "$out" || die "$t: held phase did not get ready: $(cat "$out.err")"
  sleep 3
  r1=$(rss_kib "${pids[@]}"); g1=$(goroutines "$t"); f1=$(fd_count "${pids[@]}"); c1=$(cpu_ticks "${pids[@]}"); w1=$(date +%s.%N)
  sleep $(( HELD_HOLD - 6 ))
  r2=$(rss_kib "${pids[@]}"); g2=$(goroutines "$t"); f2=$(fd_count "${pids[@]}"); c2=$(cpu_ticks "${pids[@]}"); w2=$(date +%s.%N)
  wait "$lgpid" || die "$t: held phase failed: $(cat "$out.err")"
  c3=$(cpu_ticks "${pids[@]}")
  line=$(grep '^RESULT' "$out"); RAW+=("$t $line")
  R[$t.held_opened]=$(kv opened "$line"); R[$t.held_answered]=$(kv answered "$line")
  R[$t.held_pinged]=$(kv pinged "$line"); R[$t.held_errors]=$(kv errors "$line"); R[$t.held_open_s]=$(kv open_s "$line")
  R[$t.held_rss0]=$r0; R[$t.held_rss1]=$(max "$r1" "$r2")
  R[$t.held_kib]=$(calc '%.1f' "(${R[$t.held_rss1]} - $r0) / ${R[$t.held_opened]}")
  R[$t.held_fds0]=$f0; R[$t.held_fds]=$(max "$f1" "$f2")
  if [[ -n $g0 && -n $g1 && -n $g2 ]]; then
    R[$t.held_gr0]=$g0; R[$t.held_gr]=$(max "$g1" "$g2")
  fi
  R[$t.held_cpu]=$(calc '%.2f' "($c3 - $c0) / $CLK_TCK")
  R[$t.held_cpu_hold]=$(calc '%.1f' "($c2 - $c1) / $CLK_TCK * 1000 / ($w2 - $w1)")
  log "$t: held ${R[$t.held_answered]}/$HELD_N polls answered (${R[$t.held_pinged]} by a ping), RSS $((r0 / 1024)) → $((${R[$t.held_rss1]} / 1024)) MiB = ${R[$t.held_kib]} KiB per held poll, ${R[$t.held_fds]} fds${g0:+, goroutines $g0 → ${R[$t.held_gr]}}, CPU ${R[$t.held_cpu]} s"
  sleep 5   # let the closed sockets drain, and the proxies' idle connections to the node expire
}

# One polling + ws round on target t, round n.
# run_phase T N MODE(poll|ws|hs): one measured loadgen run. When other processes took more than OTHER_MAX %
# of the CPUs meanwhile, it waits for a quiet second (at most QUIET_WAIT s) and runs again, RETRIES times
# at most; the least disturbed attempt is kept (errors of every attempt are counted).
run_phase() {
  local t=$1 n=$2 p=$3 pids c0 c1 n0 n1 s0 s1 w0 w1 line other total try best_other=1000 i per=10000
  read -ra pids <<<"${PPIDS[$t]}"
  for try in $(seq 0 "$RETRIES"); do
    if (( try > 0 )); then
      for i in $(seq "$QUIET_WAIT"); do (( $(busy_pct) < 10 )) && break; done
    fi
    c0=$(cpu_ticks "${pids[@]}"); n0=$(cpu_ticks "${NODE[$t]}"); s0=$(sys_ticks); w0=$(date +%s.%N)
    if [[ $p == poll ]]; then
      line=$("$LG" -mode polling -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$POLL_C" -n "$POLL_N" -size "$SIZE" -max-duration 150s | grep '^RESULT') \
        || die "$t: polling failed"
      total=$(kv requests_total "$line")
    elif [[ $p == ws ]]; then
      line=$("$LG" -mode ws -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$WS_C" -n "$WS_N" -size "$SIZE" -max-duration 150s | grep '^RESULT') \
        || die "$t: ws failed"
      total=$(kv roundtrips "$line")
    else
      line=$("$LG" -mode handshake -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$HS_C" -n "$HS_N" -max-duration 150s | grep '^RESULT') \
        || die "$t: handshakes failed"
      total=$(kv sessions "$line"); per=1000
      (( total > 0 )) || die "$t: no handshake succeeded"
    fi
    c1=$(cpu_ticks "${pids[@]}"); n1=$(cpu_ticks "${NODE[$t]}"); s1=$(sys_ticks); w1=$(date +%s.%N)
    other=$(other_pct "$(( s1 - s0 ))" "$(( c1 - c0 + n1 - n0 ))" "$(kv loadgen_cpu_s "$line")" "$(calc '%.3f' "$w1 - $w0")")
    local tag="$t round $n"
    (( try == 0 )) || tag+=" retry $try"
    RAW+=("$tag: other_cpu_pct=$other $line")
    R[$t.${p}_err]=$(( ${R[$t.${p}_err]:-0} + $(kv errors "$line") + $(kv timed_out "$line") ))
    if (( other < best_other )); then
      best_other=$other
      R[$t.${p}_other.$n]=$other
      R[$t.${p}_rate.$n]=$(kv rate "$line"); R[$t.${p}_p50.$n]=$(kv p50_ms "$line"); R[$t.${p}_p99.$n]=$(kv p99_ms "$line")
      R[$t.${p}_node.$n]=$(calc '%.3f' "($n1 - $n0) / $CLK_TCK / $total * $per")
      R[$t.${p}_cpu.$n]=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK / $total * $per")
    fi
    (( other <= OTHER_MAX )) && break
    (( try < RETRIES )) && log "$t round $n $p: other processes used ${other}% of the CPUs; again"
  done
  R[retries]=$(( ${R[retries]:-0} + try ))
}

load_round() {
  local t=$1 n=$2
  run_phase "$t" "$n" poll
  run_phase "$t" "$n" ws
  run_phase "$t" "$n" hs
  log "$t round $n: polling ${R[$t.poll_rate.$n]} req/s, ws ${R[$t.ws_rate.$n]} msg/s, ${R[$t.hs_rate.$n]} handshakes/s$([[ $t == direct ]] || echo ", proxy CPU/10k: polling ${R[$t.poll_cpu.$n]} s, ws ${R[$t.ws_cpu.$n]} s; per 1000 handshakes ${R[$t.hs_cpu.$n]} s")"
}

# ------------------------------------------------------------------------------------ syscall counting
# perf stat counts tracepoints in the kernel (cheap: a counter per syscall); strace stops the process at
# every syscall (the round runs several times slower, so it is shorter: SC_N / 5 requests per client).
SC_TOOL=none
SC_EVENTS=""
SC_NAMES="read readv recvfrom recvmsg write writev sendto sendmsg sendfile64 splice epoll_wait epoll_pwait epoll_pwait2
  epoll_ctl futex futex_wait futex_wake accept4 close connect socket getsockopt setsockopt shutdown ioctl fcntl
  getsockname getpeername nanosleep clock_nanosleep sched_yield rt_sigreturn rt_sigprocmask tgkill getpid mmap munmap
  mprotect madvise clone clone3"
pick_syscall_tool() {
  local tf="" d n
  if [[ $SYSCALLS == auto || $SYSCALLS == perf ]] && command -v perf >/dev/null \
    && perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    SC_TOOL=perf
    SC_EVENTS=raw_syscalls:sys_enter
    for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do [[ -d $d/events/syscalls ]] && { tf=$d; break; }; done
    if [[ -n $tf ]]; then
      for n in $SC_NAMES; do [[ -d $tf/events/syscalls/sys_enter_$n ]] && SC_EVENTS+=",syscalls:sys_enter_$n"; done
      perf stat -x, -e "$SC_EVENTS" -- true >/dev/null 2>&1 || SC_EVENTS=raw_syscalls:sys_enter
    fi
  elif [[ $SYSCALLS == auto || $SYSCALLS == strace ]] && command -v strace >/dev/null; then
    SC_TOOL=strace
  fi
  if [[ $SYSCALLS != auto && $SYSCALLS != none && $SC_TOOL != "$SYSCALLS" ]]; then
    log "warning: SYSCALLS=$SYSCALLS does not work here; syscalls not counted"
    SC_TOOL=none
  fi
}

# syscall_phase T: one polling run (POLL_C clients × SC_N requests) with the proxy's syscalls counted
# (all its processes and threads), divided by the HTTP requests relayed. Not one of the timed rounds:
# counting must not touch their CPU figures.
syscall_phase() {
  local t=$1 pids f=$TMP/syscalls-$t.txt c0 c1 line n=$SC_N spid total all p k v g sum lgcmd args=()
  read -ra pids <<<"${PPIDS[$t]}"
  [[ $SC_TOOL == strace ]] && n=$(( SC_N / 5 > 100 ? SC_N / 5 : 100 ))
  lgcmd=("$LG" -mode polling -sources "$SOURCES" -addr "${ADDR[$t]}" ${LGTLS[$t]:-} -c "$POLL_C" -n "$n" -size "$SIZE" -max-duration 150s)
  c0=$(cpu_ticks "${pids[@]}")
  if [[ $SC_TOOL == perf ]]; then
    # With -p, the command only sets how long perf counts; the loadgen's own syscalls are not counted.
    line=$(perf stat -x, -o "$f" -e "$SC_EVENTS" -p "$(IFS=,; echo "${pids[*]}")" -- "${lgcmd[@]}" | grep '^RESULT') \
      || die "$t: syscall round failed"
    # "count,unit,event,..."; "<not counted>" (a process that never ran) is 0.
    awk -F, '!/^#/ && NF > 2 { c = ($1 ~ /^[0-9]+$/) ? $1 : 0; e = $3; sub(/^syscalls:sys_enter_/, "", e);
      if (e == "raw_syscalls:sys_enter") e = "ALL"; print e, c }' "$f" >"$f.counts"
  else
    for p in "${pids[@]}"; do args+=(-p "$p"); done
    strace -c -f -q -o "$f" "${args[@]}" &
    spid=$!; PIDS+=("$spid")
    sleep 1
    line=$("${lgcmd[@]}" | grep '^RESULT') || die "$t: syscall round failed"
    kill -INT "$spid" 2>/dev/null || true
    wait "$spid" || true
    stop_pid "$spid"
    # "% time seconds usecs/call calls [errors] syscall"; the total line gives ALL.
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 { if ($NF == "total") print "ALL", $4; else print $NF, $4 }' "$f" >"$f.counts"
  fi
  c1=$(cpu_ticks "${pids[@]}")
  total=$(kv requests_total "$line")
  RAW+=("$t syscall round ($SC_TOOL): $line")
  (( total > 0 )) || die "$t: syscall round relayed nothing"
  declare -A cnt=()
  while read -r k v; do cnt[$k]=$(( ${cnt[$k]:-0} + v )); done <"$f.counts"
  all=${cnt[ALL]:-0}
  sum=0
  for g in "read:read readv recvfrom recvmsg" "write:write writev sendto sendmsg" \
           "epoll:epoll_wait epoll_pwait epoll_pwait2" "futex:futex futex_wait futex_wake"; do
    v=0
    for k in ${g#*:}; do v=$(( v + ${cnt[$k]:-0} )); done
    sum=$(( sum + v ))
    R[$t.sc_${g%%:*}]=$(calc '%.2f' "$v / $total")
  done
  R[$t.sc_all]=$(calc '%.2f' "$all / $total")
  R[$t.sc_other]=$(calc '%.2f' "($all - $sum) / $total")
  R[$t.sc_n]=$total
  R[$t.sc_cpu]=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK / $total * 10000")
  # Every syscall counted, per request, for the raw section.
  R[$t.sc_detail]=$(for k in "${!cnt[@]}"; do [[ $k == ALL || ${cnt[$k]} == 0 ]] || echo "${cnt[$k]} $k"; done \
    | sort -rn | awk -v n="$total" '{ printf "%s%s %.3f", (NR > 1 ? ", " : ""), $2, $1 / n }')
  log "$t: ${R[$t.sc_all]} syscalls per polling request ($SC_TOOL; read ${R[$t.sc_read]}, write ${R[$t.sc_write]}, epoll_wait ${R[$t.sc_epoll]}, futex ${R[$t.sc_futex]}, other ${R[$t.sc_other]})"
}

# The median over rounds of every per-round key.
aggregate() {
  local t=$1 k n vals
  for k in poll_rate poll_p50 poll_p99 poll_node poll_cpu poll_other ws_rate ws_p50 ws_p99 ws_node ws_cpu ws_other \
           hs_rate hs_p50 hs_p99 hs_node hs_cpu hs_other; do
    vals=()
    for n in $(seq "$ROUNDS"); do vals+=("${R[$t.$k.$n]}"); done
    R[$t.$k]=$(median "${vals[@]}")
    R[$t.$k.all]="${vals[*]}"
  done
}

# ---------------------------------------------------------------------------------------------- run
START=$(date +%s)
BUSY0=$(busy_pct)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
SKIPPED=()
RAN=()
for t in $TARGETS; do
  case $t in
    direct) ;;
    sidpin)  have_sidpin || { SKIPPED+=("sidpin: not available (bin/sidpin has no -to flag yet)"); continue; } ;;
    sidpin-log) have_sidpin || { SKIPPED+=("sidpin-log: not available"); continue; } ;;
    sidpin-tls) command -v openssl >/dev/null || { SKIPPED+=("sidpin-tls: no openssl to make its certificate"); continue; } ;;
    haproxy) ensure_pkg haproxy || { SKIPPED+=("haproxy: not installed (apt-get install haproxy, or BENCH_INSTALL=1)"); continue; } ;;
    nginx)   ensure_pkg nginx   || { SKIPPED+=("nginx: not installed (apt-get install nginx, or BENCH_INSTALL=1)"); continue; } ;;
    *) die "unknown target $t" ;;
  esac
  RAN+=("$t")
done
(( ${#RAN[@]} > 0 )) || die "no target to run"
(( BUSY0 < 15 )) || log "warning: the CPUs were ${BUSY0}% busy before the run started: numbers will be noisy"
pick_syscall_tool
log "syscalls counted with: $SC_TOOL"

for t in "${RAN[@]}"; do start_target "$t"; warm_up "$t"; done
# Idle rounds alternate the order of the targets (a fixed order favours whoever runs later after start).
for n in $(seq "$IDLE_ROUNDS"); do
  order=("${RAN[@]}")
  (( n % 2 == 0 )) && order=($(printf '%s\n' "${RAN[@]}" | tac))
  for t in "${order[@]}"; do [[ $t == direct ]] || idle_phase "$t" "$n"; done
done
for t in "${RAN[@]}"; do
  [[ $t == direct ]] && continue
  R[$t.idle_cpu]=$(for n in $(seq "$IDLE_ROUNDS"); do echo "${R[$t.idle_cpu.$n]}"; done | awk '{s += $1} END {printf "%.2f", s / NR}')
  R[$t.idle_cpu_rounds]=$(for n in $(seq "$IDLE_ROUNDS"); do echo -n "${R[$t.idle_cpu.$n]} "; done)
done
for t in "${RAN[@]}"; do [[ $t == direct ]] || held_phase "$t"; done
for n in $(seq "$ROUNDS"); do
  k=${#RAN[@]}
  for i in $(seq 0 $(( k - 1 ))); do load_round "${RAN[$(( (i + n - 1) % k ))]}" "$n"; done
done
if [[ $SC_TOOL != none ]]; then
  for t in "${RAN[@]}"; do [[ $t == direct ]] || syscall_phase "$t"; done
fi
for t in "${RAN[@]}"; do aggregate "$t"; stop_target "$t"; done
ELAPSED=$(( $(date +%s) - START ))
MAXOTHER=$(for t in "${RAN[@]}"; do echo ${R[$t.poll_other.all]} ${R[$t.ws_other.all]} ${R[$t.hs_other.all]}; done | tr ' ' '\n' | sort -g | tail -1)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------------- report
ratio() {  # ratio TARGET KEY: value / direct's value
  local d=${R[direct.$2]:-} v=${R[$1.$2]:-}
  if [[ -n $d && -n $v && $d != 0 ]]; then calc '%.2f×' "$v / $d"; else echo "–"; fi
}
val() { echo "${R[$1]:-–}"; }
thou() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }   # 12345 → 12,345
# vs_haproxy KEY: " (1.69× HAProxy)" for sidpin's value of KEY, when HAProxy ran.
vs_haproxy() {
  local h=${R[haproxy.$1]:-} v=${R[sidpin.$1]:-}
  if [[ -n $h && -n $v && $h != 0 && $h != – ]]; then calc ' (%.2f× HAProxy)' "$v / $h"; fi
}
# summary_row LABEL FN: one row of the summary table, FN TARGET printing each cell.
summary_row() {
  local label=$1 fn=$2 t line="| $1 |"
  for t in "${RAN[@]}"; do line+=" $($fn "$t") |"; done
  echo "$line"
}
cell_rate() {  # cell_rate TARGET KEY
  local v=${R[$1.$2]:-}
  [[ -n $v ]] || { echo "–"; return; }
  if [[ $1 == direct ]]; then thou "$v"; else echo "$(thou "$v") ($(ratio "$1" "$2"))"; fi
}
cell_lat() { [[ -n ${R[$1.$2_p50]:-} ]] && calc '%.2f / %.1f' "${R[$1.$2_p50]} / 1, ${R[$1.$2_p99]}" || echo "–"; }
cell_cost() {  # cell_cost TARGET KEY: the proxy's figure, with sidpin's ratio to HAProxy
  local v=${R[$1.$2]:-}
  if [[ $1 == direct || -z $v ]]; then echo "–"; return; fi
  if [[ $1 == sidpin ]]; then echo "**$v**$(vs_haproxy "$2")"; else echo "$v"; fi
}
c_poll() { cell_rate "$1" poll_rate; }
c_pollat() { cell_lat "$1" poll; }
c_ws() { cell_rate "$1" ws_rate; }
c_wslat() { cell_lat "$1" ws; }
c_hs() { cell_rate "$1" hs_rate; }
c_hslat() { cell_lat "$1" hs; }
c_pollcpu() { cell_cost "$1" poll_cpu; }
c_wscpu() { cell_cost "$1" ws_cpu; }
c_hscpu() { cell_cost "$1" hs_cpu; }
c_sc() { cell_cost "$1" sc_all; }
c_idle() { cell_cost "$1" kib_per_ws; }
c_idlecpu() { cell_cost "$1" idle_cpu; }
c_held() { cell_cost "$1" held_kib; }
c_heldgr() { [[ -n ${R[$1.held_gr]:-} ]] && echo "${R[$1.held_gr0]} → ${R[$1.held_gr]}" || echo "–"; }
c_heldfds() { [[ $1 != direct && -n ${R[$1.held_fds]:-} ]] && echo "${R[$1.held_fds]}" || echo "–"; }

mkdir -p "$(dirname "$OUT")"
{
  echo "# sidpin whole-process proxy benchmark"
  echo
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), ${ELAPSED}s."
  echo
  echo "- machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), kernel $(uname -r), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2/1048576 }' /proc/meminfo)"
  echo "- $(go version | sed 's/^go version //; s/^/Go /')"
  echo "- $("$BIN_DIR/sidpin" -version 2>/dev/null || echo "sidpin ?") (binaries: $BIN_DIR; work tree: git $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo "?")), GOMAXPROCS default"
  if command -v haproxy >/dev/null; then echo "- $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3) (nbthread default = $(nproc))"; fi
  if command -v nginx >/dev/null; then echo "- $(nginx -v 2>&1 | sed 's/^nginx version: //') (worker_processes auto = $(nproc))"; fi
  echo "- command: \`$ENVLINE $CMDLINE\`"
  echo "- load: polling $POLL_C clients × $POLL_N requests; WebSocket $WS_C connections × $WS_N echo round trips;" \
       "handshakes: $HS_N new sessions, $HS_C at a time;" \
       "$ROUNDS interleaved rounds, medians shown; idle $IDLE_N WebSockets held ${IDLE_HOLD}s; $HELD_N polling GETs held ${HELD_HOLD}s;" \
       "syscalls counted over one more polling run ($SC_TOOL); payload $SIZE bytes; connections from $SOURCES loopback addresses;" \
       "chatnode -conformance, ping ${PING_INTERVAL}/${PING_TIMEOUT}"
  echo "- sidpin runs the quick start's config plus an admin listener (\`bench/proxies/sidpin.yaml.tmpl\`: memory pin table, TCP health checks, default per-client limits), from which go_goroutines is read."
  echo "- the load generator, the proxy and the node share the same $(nproc) CPUs: compare targets within one run (ratios), not across machines." \
       "CPUs busy before the run: ${BUSY0}%; load average before: $LOAD0, after: $LOAD1."
  if (( MAXOTHER > OTHER_MAX )); then
    echo "- **disturbed**: in some rounds other processes used up to ${MAXOTHER}% of the CPUs even after ${R[retries]:-0} re-runs (see \"other CPU %\" below); prefer a run on a quiet box."
  else
    echo "- other processes' CPU during the kept rounds: at most ${MAXOTHER}% of the CPUs (quiet); ${R[retries]:-0} disturbed phases were run again."
  fi
  for s in "${SKIPPED[@]}"; do echo "- **skipped** $s"; done
  echo
  echo "## Throughput and latency (median of $ROUNDS rounds)"
  echo
  echo "| target | polling req/s | vs direct | p50 ms | p99 ms | WS echo msg/s | vs direct | p50 ms | p99 ms | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${RAN[@]}"; do
    echo "| $t | $(val $t.poll_rate) | $(ratio $t poll_rate) | $(val $t.poll_p50) | $(val $t.poll_p99) | $(val $t.ws_rate) | $(ratio $t ws_rate) | $(val $t.ws_p50) | $(val $t.ws_p99) | $(( ${R[$t.poll_err]:-0} + ${R[$t.ws_err]:-0} + ${R[$t.hs_err]:-0} + ${R[$t.idle_errors]:-0} + ${R[$t.held_errors]:-0} )) |"
  done
  echo
  echo "## Proxy cost (the proxy's processes only)"
  echo
  echo "| target | CPU s / 10k polling requests | CPU s / 10k WS echoes | KiB / idle WS | RSS before → holding idle | idle WS alive | fds holding idle | CPU s, idle phase |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${RAN[@]}"; do
    [[ $t == direct ]] && continue
    echo "| $t | $(val $t.poll_cpu) | $(val $t.ws_cpu) | $(val $t.kib_per_ws) | $(( ${R[$t.rss0]} / 1024 )) → $(( ${R[$t.rss1]} / 1024 )) MiB | $(val $t.idle_alive)/$IDLE_N | $(val $t.fds) | $(val $t.idle_cpu) (${R[$t.idle_cpu_rounds]% }) |"
  done
  echo "| *target for sidpin* | *≤ 0.3* | *≤ 0.15* | *≤ 6* | | | | |"
  echo
  echo "## Held long-polls ($HELD_N polling GETs held by the node ${HELD_HOLD}s, on a freshly started proxy)"
  echo
  echo "| target | KiB / held poll | RSS before → holding | goroutines before → holding | fds before → holding | polls answered | answered by a ping | CPU s, held phase | CPU ms/s while holding | open s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${RAN[@]}"; do
    [[ $t == direct || -z ${R[$t.held_kib]:-} ]] && continue
    echo "| $t | $(val $t.held_kib) | $(( ${R[$t.held_rss0]} / 1024 )) → $(( ${R[$t.held_rss1]} / 1024 )) MiB | $(c_heldgr $t) | ${R[$t.held_fds0]} → ${R[$t.held_fds]} | $(val $t.held_answered)/$HELD_N | $(val $t.held_pinged) | $(val $t.held_cpu) | $(val $t.held_cpu_hold) | $(val $t.held_open_s) |"
  done
  echo
  echo "## Handshakes (median of $ROUNDS rounds: $HS_N new clients, $HS_C at a time)"
  echo
  echo "| target | handshakes/s | vs direct | p50 ms | p99 ms | proxy CPU s / 1000 handshakes | node CPU s / 1000 | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${RAN[@]}"; do
    if [[ $t == direct ]]; then pc="–"; else pc=$(val $t.hs_cpu); fi
    echo "| $t | $(val $t.hs_rate) | $(ratio $t hs_rate) | $(val $t.hs_p50) | $(val $t.hs_p99) | $pc | $(val $t.hs_node) | ${R[$t.hs_err]:-0} |"
  done
  echo
  if [[ $SC_TOOL != none ]]; then
    echo "## Syscalls per polling request ($SC_TOOL, one extra polling run: $POLL_C clients × $([[ $SC_TOOL == strace ]] && echo "$(( SC_N / 5 > 100 ? SC_N / 5 : 100 ))" || echo "$SC_N") requests)"
    echo
    echo "| target | syscalls / request | read | write | epoll_wait | futex | other | requests counted | proxy CPU s / 10k in that run |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${RAN[@]}"; do
      [[ $t == direct || -z ${R[$t.sc_all]:-} ]] && continue
      echo "| $t | $(val $t.sc_all) | $(val $t.sc_read) | $(val $t.sc_write) | $(val $t.sc_epoll) | $(val $t.sc_futex) | $(val $t.sc_other) | $(val $t.sc_n) | $(val $t.sc_cpu) |"
    done
    echo
  else
    echo "Syscalls were not counted (SYSCALLS=$SYSCALLS; neither a working \`perf stat\` nor strace)."
    echo
  fi
  if [[ -n ${R[sidpin.poll_cpu]:-} && -n ${R[sidpin-log.poll_cpu]:-} ]]; then
    echo "## The session log's cost (sidpin-log: sidpin with log.sessions on, against sidpin in the same run)"
    echo
    echo "| load | sidpin | sidpin-log | cost | session lines written |"
    echo "|---|---:|---:|---:|---:|"
    echo "| proxy CPU s per 10k polling requests | $(val sidpin.poll_cpu) | $(val sidpin-log.poll_cpu) | $(pct_more "${R[sidpin.poll_cpu]}" "${R[sidpin-log.poll_cpu]}") | |"
    echo "| proxy CPU s per 10k WebSocket echoes | $(val sidpin.ws_cpu) | $(val sidpin-log.ws_cpu) | $(pct_more "${R[sidpin.ws_cpu]}" "${R[sidpin-log.ws_cpu]}") | |"
    echo "| proxy CPU s per 1000 handshakes | $(val sidpin.hs_cpu) | $(val sidpin-log.hs_cpu) | $(pct_more "${R[sidpin.hs_cpu]}" "${R[sidpin-log.hs_cpu]}") | $(grep -c 'msg="session ended"' "$TMP/sidpin-log/sidpin.log" 2>/dev/null || echo 0) since its last start |"
    echo
  fi
  echo "## Summary (ratios within this run; sidpin's proxy costs also as a multiple of HAProxy's)"
  echo
  line="| |"; sep="|---|"
  for t in "${RAN[@]}"; do case $t in haproxy) line+=" HAProxy |" ;; *) line+=" $t |" ;; esac; sep+="---:|"; done
  echo "$line"; echo "$sep"
  summary_row "polling requests/s (vs direct)" c_poll
  summary_row "polling latency p50 / p99 ms" c_pollat
  summary_row "WebSocket echoes/s (vs direct)" c_ws
  summary_row "WebSocket latency p50 / p99 ms" c_wslat
  summary_row "handshakes/s (vs direct)" c_hs
  summary_row "handshake latency p50 / p99 ms" c_hslat
  summary_row "proxy CPU s per 10k polling requests" c_pollcpu
  summary_row "proxy CPU s per 10k WebSocket echoes" c_wscpu
  summary_row "proxy CPU s per 1000 handshakes" c_hscpu
  [[ $SC_TOOL == none ]] || summary_row "proxy syscalls per polling request" c_sc
  summary_row "proxy CPU s, idle phase ($IDLE_N WebSocket opens, ${IDLE_HOLD} s held; mean of $IDLE_ROUNDS)" c_idlecpu
  summary_row "proxy RSS per idle WebSocket, KiB" c_idle
  summary_row "proxy RSS per held poll, KiB" c_held
  summary_row "proxy goroutines, before → $HELD_N held polls" c_heldgr
  summary_row "proxy fds holding $HELD_N polls" c_heldfds
  echo
  echo "Per round (CPU s / 10k; rounds in order): "
  echo
  echo "| target | polling proxy CPU | WS proxy CPU | polling req/s | WS msg/s | node CPU / 10k polling | node CPU / 10k WS | other CPU % polling | other CPU % WS |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for t in "${RAN[@]}"; do
    if [[ $t == direct ]]; then pc="–"; wc="–"; else pc=${R[$t.poll_cpu.all]}; wc=${R[$t.ws_cpu.all]}; fi
    echo "| $t | $pc | $wc | ${R[$t.poll_rate.all]} | ${R[$t.ws_rate.all]} | ${R[$t.poll_node.all]} | ${R[$t.ws_node.all]} | ${R[$t.poll_other.all]} | ${R[$t.ws_other.all]} |"
  done
  echo
  echo "| target | handshake proxy CPU / 1000 | handshakes/s | node CPU / 1000 handshakes | other CPU % handshakes |"
  echo "|---|---|---|---|---|"
  for t in "${RAN[@]}"; do
    if [[ $t == direct ]]; then pc="–"; else pc=${R[$t.hs_cpu.all]}; fi
    echo "| $t | $pc | ${R[$t.hs_rate.all]} | ${R[$t.hs_node.all]} | ${R[$t.hs_other.all]} |"
  done
  echo
  echo "What is counted:"
  echo
  echo "- **polling request**: one HTTP request relayed (POST \`4<payload>\` → \`ok\`, or GET → \`4<payload>\`);" \
       "an echo is 2 requests. The rate counts the timed loop; CPU per 10k divides by every request of the phase" \
       "(also the $POLL_C handshakes, the $POLL_C closing POSTs and any ping answers)."
  echo "- **WS echo**: one round trip, i.e. one \`4<payload>\` frame client → node and the same frame back," \
       "counted ONCE (2 frames relayed by the proxy). CPU per 10k includes the $WS_C upgrades."
  echo "- **CPU s**: utime+stime of the proxy's processes (nginx: master + workers) from /proc/PID/stat," \
       "after − before the phase, / CLK_TCK ($CLK_TCK). Node CPU: the same for the chatnode." \
       "**other CPU %**: share of the $(nproc) CPUs used during the phase by neither the load generator, the proxy nor the node" \
       "(/proc/stat; kernel softirq work of the loopback lands there too, so a few % is normal): a high value means a disturbed round."
  echo "- **KiB / idle WS**: (VmRSS while $IDLE_N WebSockets are held − VmRSS of the warmed-up fresh proxy just before) / opened;" \
       "the larger of two samples (3 s after all are open, and $(( IDLE_HOLD - 3 )) s after). **fds**: open descriptors of the proxy then."
  echo "- **held poll**: a polling session whose GET the node holds (it has nothing to send until its ping, ${PING_INTERVAL} after the handshake;" \
       "the phase is shorter). **KiB / held poll**: (VmRSS while $HELD_N GETs are held − VmRSS of the warmed-up proxy, started afresh for this phase, just before) / polls held;" \
       "the larger of two samples (3 s after all GETs are sent, and $(( HELD_HOLD - 3 )) s after). **goroutines**: sidpin's go_goroutines (admin /metrics) at the same moments." \
       "**fds**: open descriptors (2 per held poll is the floor: client + node socket). Then the load generator POSTs a message to every session; **answered** counts the held GETs" \
       "that came back with it (a GET answered by a ping instead would be counted apart and polled again). **CPU s, held phase**: the whole phase" \
       "(per poll: handshake, GET, releasing POST, closing POST); **CPU ms/s while holding**: between the two samples, nothing moving."
  echo "- **handshake**: a new client: a new TCP connection (from the next of the $SOURCES loopback addresses), the handshake GET," \
       "one POST on the new session (the close packet \`1\`: the node and the proxy keep nothing), the connection closed." \
       "Rate: sessions/s (2 HTTP requests each). Latency: from the dial to the open packet. CPU per 1000 handshakes: the whole phase / sessions."
  if [[ $SC_TOOL == perf ]]; then
    echo "- **syscalls**: \`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_<name>… -p <the proxy's PIDs>\` (every thread, in the kernel)" \
         "over one extra polling run, / the HTTP requests of that run (handshakes and closing POSTs included). read = read, readv, recvfrom, recvmsg;" \
         "write = write, writev, sendto, sendmsg; epoll_wait = epoll_wait, epoll_pwait(2); futex; other = all the rest. Not one of the timed rounds" \
         "(counting costs a little CPU: compare its CPU/10k with the rounds')."
  elif [[ $SC_TOOL == strace ]]; then
    echo "- **syscalls**: \`strace -c -f -p <the proxy's PIDs>\` over one extra, shorter polling run (strace stops the process at every syscall:" \
         "several times slower, so its CPU/10k means nothing), / the HTTP requests of that run. Groups as for perf: read, readv, recvfrom, recvmsg; write," \
         "writev, sendto, sendmsg; epoll_wait, epoll_pwait(2); futex; the rest."
  fi
  echo "- latency: per HTTP request (polling) or per round trip (WS), measured in the load generator, nearest rank."
  echo
  echo "<details><summary>raw loadgen results</summary>"
  echo
  echo '```'
  for l in "${RAW[@]}"; do echo "$l"; done
  for t in "${RAN[@]}"; do [[ -n ${R[$t.sc_detail]:-} ]] && echo "$t syscalls per request ($SC_TOOL): ${R[$t.sc_detail]}"; done
  echo '```'
  echo
  echo "</details>"
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
