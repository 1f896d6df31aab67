#!/usr/bin/env bash
# Whole-process proxy benchmark: the same Engine.IO echo load sent to a chatnode directly and through
# sidpin, HAProxy and nginx. Measures throughput/latency (bench/loadgen) and the proxy process's CPU
# seconds and RSS (/proc). Writes bench/results/latest.md. See bench/README.md.
#
#   bench/run.sh                      # every target, ~6 minutes
#   TARGETS="direct sidpin" bench/run.sh
#   POLL_C=50 POLL_N=4000 WS_C=50 WS_N=4000 IDLE_N=3000 IDLE_HOLD=30 ROUNDS=3 bench/run.sh
#
# Each target gets its own fresh chatnode (and proxy); all are started first. Then:
#   1. idle phase, target after target, on the still fresh proxies (RSS before / while holding);
#   2. ROUNDS rounds of { polling, ws } over the targets, interleaved (the order rotates each round), so
#      that a drifting background load hits every target alike; the median round is reported.
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
ENVLINE="TARGETS=\"$TARGETS\" POLL_C=$POLL_C POLL_N=$POLL_N WS_C=$WS_C WS_N=$WS_N IDLE_N=$IDLE_N IDLE_HOLD=$IDLE_HOLD ROUNDS=$ROUNDS SIZE=$SIZE OTHER_MAX=$OTHER_MAX RETRIES=$RETRIES"

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

(( IDLE_HOLD >= 10 )) || die "IDLE_HOLD must be at least 10 (seconds)"
(( ROUNDS >= 1 )) || die "ROUNDS must be at least 1"

# ---------------------------------------------------------------------------------------------- setup
# Sockets: an idle proxied WebSocket costs the proxy 2 descriptors (sidpin: 4, see README); raise the
# soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
[[ $NOFILE == unlimited ]] && NOFILE=65536
if (( NOFILE < 4 * IDLE_N + 1000 )); then
  new=$(( (NOFILE - 1000) / 4 ))
  (( new > 0 )) || die "ulimit -n is $NOFILE: too low"
  log "ulimit -n is $NOFILE: IDLE_N lowered from $IDLE_N to $new"
  IDLE_N=$new
fi

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

stop_pid() {
  local pid=$1 i
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
RAW=()

# start_target TARGET: a fresh chatnode, and the proxy in front of it.
start_target() {
  local target=$1 ports node_port proxy_port node_pid pid dir=$TMP/$1
  mkdir -p "$dir"; chmod 755 "$dir"
  mapfile -t ports < <("$LG" -mode freeport -c 2)
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
    sidpin)
      "$BIN_DIR/sidpin" -listen "127.0.0.1:$proxy_port" -to "http://127.0.0.1:$node_port" -path "$EIO_PATH" \
        >"$dir/sidpin.log" 2>&1 &
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
  "$LG" -mode polling -sources "$SOURCES" -addr "${ADDR[$t]}" -c 4 -n 200 -size "$SIZE" -max-duration 30s >/dev/null \
    || die "$t: polling warm-up failed"
  "$LG" -mode ws -sources "$SOURCES" -addr "${ADDR[$t]}" -c 4 -n 200 -size "$SIZE" -max-duration 30s >/dev/null \
    || die "$t: ws warm-up failed"
}

# Idle WebSockets, on a fresh (warmed-up) proxy: RSS before, and while they are held.
idle_phase() {
  local t=$1 pids out lgpid i r0 r1 r2 c0 c1 line
  read -ra pids <<<"${PPIDS[$t]}"
  sleep 1
  r0=$(rss_kib "${pids[@]}"); c0=$(cpu_ticks "${pids[@]}")
  out=$TMP/idle-$t.out
  "$LG" -mode idle -sources "$SOURCES" -addr "${ADDR[$t]}" -c "$IDLE_N" -hold "${IDLE_HOLD}s" -max-duration 120s >"$out" 2>"$out.err" &
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
  R[$t.idle_opened]=$(kv opened "$line"); R[$t.idle_alive]=$(kv alive_at_end "$line")
  R[$t.idle_errors]=$(kv errors "$line")
  (( r2 > r1 )) && r1=$r2
  R[$t.rss0]=$r0; R[$t.rss1]=$r1
  R[$t.kib_per_ws]=$(calc '%.1f' "($r1 - $r0) / ${R[$t.idle_opened]}")
  R[$t.idle_cpu]=$(calc '%.2f' "($c1 - $c0) / $CLK_TCK")
  log "$t: idle ${R[$t.idle_alive]}/$IDLE_N alive, RSS $((r0 / 1024)) → $((r1 / 1024)) MiB = ${R[$t.kib_per_ws]} KiB per WebSocket, ${R[$t.fds]} fds"
  sleep 2   # let the closed idle sockets drain
}

# One polling + ws round on target t, round n.
# run_phase T N MODE(poll|ws): one measured loadgen run. When other processes took more than OTHER_MAX %
# of the CPUs meanwhile, it waits for a quiet second (at most QUIET_WAIT s) and runs again, RETRIES times
# at most; the least disturbed attempt is kept (errors of every attempt are counted).
run_phase() {
  local t=$1 n=$2 p=$3 pids c0 c1 n0 n1 s0 s1 w0 w1 line other total try best_other=1000 i
  read -ra pids <<<"${PPIDS[$t]}"
  for try in $(seq 0 "$RETRIES"); do
    if (( try > 0 )); then
      for i in $(seq "$QUIET_WAIT"); do (( $(busy_pct) < 10 )) && break; done
    fi
    c0=$(cpu_ticks "${pids[@]}"); n0=$(cpu_ticks "${NODE[$t]}"); s0=$(sys_ticks); w0=$(date +%s.%N)
    if [[ $p == poll ]]; then
      line=$("$LG" -mode polling -sources "$SOURCES" -addr "${ADDR[$t]}" -c "$POLL_C" -n "$POLL_N" -size "$SIZE" -max-duration 150s | grep '^RESULT') \
        || die "$t: polling failed"
      total=$(kv requests_total "$line")
    else
      line=$("$LG" -mode ws -sources "$SOURCES" -addr "${ADDR[$t]}" -c "$WS_C" -n "$WS_N" -size "$SIZE" -max-duration 150s | grep '^RESULT') \
        || die "$t: ws failed"
      total=$(kv roundtrips "$line")
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
      R[$t.${p}_node.$n]=$(calc '%.3f' "($n1 - $n0) / $CLK_TCK / $total * 10000")
      R[$t.${p}_cpu.$n]=$(calc '%.3f' "($c1 - $c0) / $CLK_TCK / $total * 10000")
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
  log "$t round $n: polling ${R[$t.poll_rate.$n]} req/s, ws ${R[$t.ws_rate.$n]} msg/s$([[ $t == direct ]] || echo ", proxy CPU/10k: polling ${R[$t.poll_cpu.$n]} s, ws ${R[$t.ws_cpu.$n]} s")"
}

# The median over rounds of every per-round key.
aggregate() {
  local t=$1 k n vals
  for k in poll_rate poll_p50 poll_p99 poll_node poll_cpu poll_other ws_rate ws_p50 ws_p99 ws_node ws_cpu ws_other; do
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
    haproxy) ensure_pkg haproxy || { SKIPPED+=("haproxy: not installed (apt-get install haproxy, or BENCH_INSTALL=1)"); continue; } ;;
    nginx)   ensure_pkg nginx   || { SKIPPED+=("nginx: not installed (apt-get install nginx, or BENCH_INSTALL=1)"); continue; } ;;
    *) die "unknown target $t" ;;
  esac
  RAN+=("$t")
done
(( ${#RAN[@]} > 0 )) || die "no target to run"
(( BUSY0 < 15 )) || log "warning: the CPUs were ${BUSY0}% busy before the run started: numbers will be noisy"

for t in "${RAN[@]}"; do start_target "$t"; warm_up "$t"; done
for t in "${RAN[@]}"; do [[ $t == direct ]] || idle_phase "$t"; done
for n in $(seq "$ROUNDS"); do
  k=${#RAN[@]}
  for i in $(seq 0 $(( k - 1 ))); do load_round "${RAN[$(( (i + n - 1) % k ))]}" "$n"; done
done
for t in "${RAN[@]}"; do aggregate "$t"; stop_target "$t"; done
ELAPSED=$(( $(date +%s) - START ))
MAXOTHER=$(for t in "${RAN[@]}"; do echo ${R[$t.poll_other.all]} ${R[$t.ws_other.all]}; done | tr ' ' '\n' | sort -g | tail -1)
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------------- report
ratio() {  # ratio TARGET KEY: value / direct's value
  local d=${R[direct.$2]:-} v=${R[$1.$2]:-}
  if [[ -n $d && -n $v && $d != 0 ]]; then calc '%.2f×' "$v / $d"; else echo "–"; fi
}
val() { echo "${R[$1]:-–}"; }

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
       "$ROUNDS interleaved rounds, medians shown; idle $IDLE_N WebSockets held ${IDLE_HOLD}s; payload $SIZE bytes;" \
       "chatnode -conformance, ping ${PING_INTERVAL}/${PING_TIMEOUT}"
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
    echo "| $t | $(val $t.poll_rate) | $(ratio $t poll_rate) | $(val $t.poll_p50) | $(val $t.poll_p99) | $(val $t.ws_rate) | $(ratio $t ws_rate) | $(val $t.ws_p50) | $(val $t.ws_p99) | $(( ${R[$t.poll_err]:-0} + ${R[$t.ws_err]:-0} + ${R[$t.idle_errors]:-0} )) |"
  done
  echo
  echo "## Proxy cost (the proxy's processes only)"
  echo
  echo "| target | CPU s / 10k polling requests | CPU s / 10k WS echoes | KiB / idle WS | RSS before → holding idle | idle WS alive | fds holding idle | CPU s, idle phase |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${RAN[@]}"; do
    [[ $t == direct ]] && continue
    echo "| $t | $(val $t.poll_cpu) | $(val $t.ws_cpu) | $(val $t.kib_per_ws) | $(( ${R[$t.rss0]} / 1024 )) → $(( ${R[$t.rss1]} / 1024 )) MiB | $(val $t.idle_alive)/$IDLE_N | $(val $t.fds) | $(val $t.idle_cpu) |"
  done
  echo "| *target for sidpin* | *≤ 0.3* | *≤ 0.15* | *≤ 6* | | | | |"
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
  echo "- latency: per HTTP request (polling) or per round trip (WS), measured in the load generator, nearest rank."
  echo
  echo "<details><summary>raw loadgen results</summary>"
  echo
  echo '```'
  for l in "${RAW[@]}"; do echo "$l"; done
  echo '```'
  echo
  echo "</details>"
} >"$OUT"
log "wrote $OUT"
cat "$OUT"
