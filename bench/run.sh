#!/usr/bin/env bash
# ferrolite benchmark harness: direct mock vs nginx vs ferrolite, in one run.
#
#   bench/run.sh            full run (about 5 minutes)
#   QUICK=1 bench/run.sh    smoke run (about 1 minute)
#
# Environment knobs (all optional):
#   QUICK=1            a few seconds per phase, 10k-request soak
#   PIN=1|0            1 (default): proxy on CPU 0, mock + load generator on
#                      CPU 1, nginx with 1 worker; 0: nothing pinned, nginx
#                      with one worker per core
#   TARGETS="direct nginx ferrolite"   which targets to run
#   SKIP_BUILD=1       do not run cargo build
#   RATE_SECS, MAX_SECS, MAX_CONNS, SOAK_REQUESTS, TTFB_REQUESTS, STREAM_CHUNK_DELAY_MS
#   FERROLITE_BIN      gateway binary (default $CARGO_TARGET_DIR/release/ferrolite)
#   FERROLITE_RUST_LOG RUST_LOG for the gateway (default: warn)
# Results: printed, and written to bench/results/<timestamp>.md (+ raw/ data).
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/ferrolite-target}
REL=$CARGO_TARGET_DIR/release

QUICK=${QUICK:-0}
PIN=${PIN:-1}
TARGETS=${TARGETS:-"direct nginx ferrolite"}
if [[ $QUICK == 1 ]]; then
  RATE_SECS=${RATE_SECS:-3}; MAX_SECS=${MAX_SECS:-3}; SOAK_REQUESTS=${SOAK_REQUESTS:-10000}
  TTFB_REQUESTS=${TTFB_REQUESTS:-100}; WARMUP_REQUESTS=${WARMUP_REQUESTS:-1000}
else
  RATE_SECS=${RATE_SECS:-15}; MAX_SECS=${MAX_SECS:-10}; SOAK_REQUESTS=${SOAK_REQUESTS:-100000}
  TTFB_REQUESTS=${TTFB_REQUESTS:-500}; WARMUP_REQUESTS=${WARMUP_REQUESTS:-5000}
fi
MAX_CONNS=${MAX_CONNS:-50}
RATE_CONNS=${RATE_CONNS:-32}
STREAM_CHUNK_DELAY_MS=${STREAM_CHUNK_DELAY_MS:-20}
FERROLITE_BIN=${FERROLITE_BIN:-$REL/ferrolite}
MASTER_KEY=sk-bench-master-0123456789
BODY='{"model":"bench","messages":[{"role":"user","content":"hello"}]}'
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)

TS=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR=$BENCH_DIR/results
RAW=$RESULTS_DIR/$TS-raw
REPORT=$RESULTS_DIR/$TS.md
mkdir -p "$RAW"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- pinning
if [[ $PIN == 1 && $NCPU -ge 2 ]]; then
  PROXY_CPUS=0; CLIENT_CPUS=1; NGINX_WORKERS=1; MOCK_THREADS=1
  PIN_DESC="proxy (nginx workers / ferrolite) pinned to CPU 0; mock upstream, load generator and TTFB probe pinned to CPU 1; nginx worker_processes 1 (one per core it may use); ferrolite sees 1 CPU"
else
  PIN=0
  PROXY_CPUS=""; CLIENT_CPUS=""; NGINX_WORKERS=$NCPU; MOCK_THREADS=$NCPU
  PIN_DESC="nothing pinned; nginx worker_processes $NCPU (one per core)"
fi
# Command prefixes (not functions: a backgrounded function would make $! the
# pid of a subshell instead of the server's).
PROXY_PIN=(); CLIENT_PIN=()
[[ -n $PROXY_CPUS ]] && PROXY_PIN=(taskset -c "$PROXY_CPUS")
[[ -n $CLIENT_CPUS ]] && CLIENT_PIN=(taskset -c "$CLIENT_CPUS")

# ---------------------------------------------------------------- tools
need_tools() {
  command -v curl >/dev/null || die "curl is required"
  command -v jq >/dev/null || { log "installing jq"; apt-get install -y -qq jq >/dev/null || die "cannot install jq"; }
  if [[ " $TARGETS " == *" nginx "* ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    log "installing nginx (Debian package)"
    (apt-get install -y -qq nginx-light >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; }) \
      || die "cannot install nginx"
  fi
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  if ! command -v oha >/dev/null; then
    [[ -x $HOME/.cargo/bin/oha ]] && export PATH=$HOME/.cargo/bin:$PATH
  fi
  if ! command -v oha >/dev/null; then
    log "installing oha (cargo install oha --locked, one job; takes a few minutes)"
    CARGO_TARGET_DIR=/var/tmp/oha-target nice cargo install oha --locked -j 1 >"$RAW/oha-install.log" 2>&1 \
      || die "cannot install oha; see $RAW/oha-install.log"
    export PATH=$HOME/.cargo/bin:$PATH
  fi
  if oha --help 2>&1 | grep -q -- '--output-format'; then OHA_JSON=(--output-format json); else OHA_JSON=(-j); fi
  OHA_VERSION=$(oha --version 2>&1 | head -1)
}

# ---------------------------------------------------------------- processes
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http() { # url, seconds, [pid]
  local url=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 20; i++)); do
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# pids of a target's proxy process(es) (nginx: master + workers)
proxy_pids() {
  case $1 in
    direct) echo "$MOCK_PID" ;;
    nginx) echo "$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')" ;;
    ferrolite) echo "$FL_PID" ;;
  esac
}
# utime+stime clock ticks, summed over pids
cpu_ticks() {
  local total=0 p t
  for p in "$@"; do
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
    total=$((total + t))
  done
  echo "$total"
}
# sum of a /proc/<pid>/status field (kB) over pids
status_kb() {
  local field=$1 total=0 p v
  shift
  for p in "$@"; do
    v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------- build
FL_BUILD_FAILED=0
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  log "building release binaries (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
  if ! (cd "$ROOT" && cargo build --release -p ferrolite-bench) >"$RAW/build-bench.log" 2>&1; then
    tail -30 "$RAW/build-bench.log" >&2
    die "cannot build ferrolite-bench"
  fi
  if [[ " $TARGETS " == *" ferrolite "* ]]; then
    if ! (cd "$ROOT" && cargo build --release -p ferrolite-server) >"$RAW/build-server.log" 2>&1; then
      FL_BUILD_FAILED=1
      log "WARNING: cargo build -p ferrolite-server failed (see $RAW/build-server.log); the ferrolite phase will use an existing binary if there is one"
    fi
  fi
fi
[[ -x $REL/mock-upstream && -x $REL/ttfb ]] || die "missing $REL/mock-upstream or $REL/ttfb"
need_tools

# ---------------------------------------------------------------- start
MOCK_PORT=$(free_port); MOCK2_PORT=$(free_port)
log "starting mock upstream on :$MOCK_PORT and a slow-stream mock on :$MOCK2_PORT (chunk delay ${STREAM_CHUNK_DELAY_MS} ms)"
"${CLIENT_PIN[@]}" "$REL/mock-upstream" --port "$MOCK_PORT" --threads "$MOCK_THREADS" >"$RAW/mock.log" 2>&1 &
MOCK_PID=$!; PIDS+=("$MOCK_PID")
"${CLIENT_PIN[@]}" "$REL/mock-upstream" --port "$MOCK2_PORT" --threads 1 --chunk-delay-ms "$STREAM_CHUNK_DELAY_MS" >"$RAW/mock2.log" 2>&1 &
MOCK2_PID=$!; PIDS+=("$MOCK2_PID")
wait_http "http://127.0.0.1:$MOCK_PORT/health" 10 "$MOCK_PID" || die "mock upstream did not start: $(cat "$RAW/mock.log")"
wait_http "http://127.0.0.1:$MOCK2_PORT/health" 10 "$MOCK2_PID" || die "slow mock did not start: $(cat "$RAW/mock2.log")"

declare -A URL STREAM_URL AUTH STATUS IDLE_RSS
URL[direct]=http://127.0.0.1:$MOCK_PORT/v1/chat/completions
STREAM_URL[direct]=http://127.0.0.1:$MOCK2_PORT/v1/chat/completions
AUTH[direct]=""
STATUS[direct]=ok
IDLE_RSS[direct]=$(status_kb VmRSS "$MOCK_PID")

NGINX_PID=""
if [[ " $TARGETS " == *" nginx "* ]]; then
  NGINX_PORT=$(free_port); NGINX2_PORT=$(free_port)
  NGX=$RAW/nginx; mkdir -p "$NGX"
  cat >"$NGX/nginx.conf" <<EOF
# bare reverse proxy to the mock: keep-alive both sides, no logging
worker_processes $NGINX_WORKERS;
pid $NGX/nginx.pid;
error_log $NGX/error.log crit;
events { worker_connections 4096; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $NGX/body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  upstream mock { server 127.0.0.1:$MOCK_PORT; keepalive 128; keepalive_requests 10000000; }
  upstream mock_stream { server 127.0.0.1:$MOCK2_PORT; keepalive 32; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
  server {
    listen 127.0.0.1:$NGINX2_PORT;
    location / {
      proxy_pass http://mock_stream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  log "starting nginx on :$NGINX_PORT ($NGINX_WORKERS worker(s))"
  "${PROXY_PIN[@]}" "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -g 'daemon off;' >"$NGX/stdout.log" 2>&1 &
  NGINX_PID=$!; PIDS+=("$NGINX_PID")
  URL[nginx]=http://127.0.0.1:$NGINX_PORT/v1/chat/completions
  STREAM_URL[nginx]=http://127.0.0.1:$NGINX2_PORT/v1/chat/completions
  AUTH[nginx]=""
  if wait_http "http://127.0.0.1:$NGINX_PORT/health" 10 "$NGINX_PID"; then
    sleep 0.5
    STATUS[nginx]=ok
    IDLE_RSS[nginx]=$(status_kb VmRSS $(proxy_pids nginx))
  else
    STATUS[nginx]="nginx did not start: $(tail -5 "$NGX/stdout.log" "$NGX/error.log" 2>/dev/null | tr '\n' ' ')"
  fi
fi

FL_PID=""
if [[ " $TARGETS " == *" ferrolite "* ]]; then
  FL_PORT=$(free_port)
  cat >"$RAW/ferrolite.yaml" <<EOF
model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-bench-upstream
  - model_name: bench-stream
    litellm_params:
      model: openai/bench
      api_base: http://127.0.0.1:$MOCK2_PORT/v1
      api_key: sk-bench-upstream
general_settings:
  master_key: $MASTER_KEY
  # The default embedded store, kept with this run's files: every call is
  # priced and written as a spend row, as in a default deployment.
  database_url: sqlite://$RAW/ferrolite.db
EOF
  URL[ferrolite]=http://127.0.0.1:$FL_PORT/v1/chat/completions
  STREAM_URL[ferrolite]=${URL[ferrolite]}
  AUTH[ferrolite]=$MASTER_KEY
  if [[ ! -x $FERROLITE_BIN ]]; then
    STATUS[ferrolite]="gateway binary $FERROLITE_BIN not found (did cargo build -p ferrolite-server fail? see $RAW/build-server.log)"
  else
    log "starting ferrolite on :$FL_PORT"
    RUST_LOG=${FERROLITE_RUST_LOG:-warn} "${PROXY_PIN[@]}" "$FERROLITE_BIN" --config "$RAW/ferrolite.yaml" \
      --host 127.0.0.1 --port "$FL_PORT" >"$RAW/ferrolite.log" 2>&1 &
    FL_PID=$!; PIDS+=("$FL_PID")
    if wait_http "http://127.0.0.1:$FL_PORT/health/readiness" 20 "$FL_PID"; then
      sleep 0.5
      STATUS[ferrolite]=ok
      IDLE_RSS[ferrolite]=$(status_kb VmRSS "$FL_PID")
    elif kill -0 "$FL_PID" 2>/dev/null; then
      STATUS[ferrolite]="gateway running but GET /health/readiness never returned 200 within 20 s; log: $(tail -5 "$RAW/ferrolite.log" | tr '\n' ' ')"
    else
      STATUS[ferrolite]="gateway exited at start; log: $(tail -5 "$RAW/ferrolite.log" | tr '\n' ' ')"
    fi
  fi
fi

# ---------------------------------------------------------------- phases
# oha_run <target> <name> <oha args...>: runs oha on the client CPU, saves
# JSON, and records proxy CPU ticks over the run.
declare -A R   # results: R[target.key]=value
oha_run() {
  local t=$1 name=$2; shift 2
  local out=$RAW/$t-$name.json pids t0 t1
  pids=$(proxy_pids "$t")
  local hdr=()
  [[ -n ${AUTH[$t]} ]] && hdr=(-H "Authorization: Bearer ${AUTH[$t]}")
  t0=$(cpu_ticks $pids)
  "${CLIENT_PIN[@]}" oha --no-tui "${OHA_JSON[@]}" -m POST -T application/json -d "$BODY" "${hdr[@]}" "$@" "${URL[$t]}" >"$out" 2>"$RAW/$t-$name.err" || true
  t1=$(cpu_ticks $pids)
  if ! jq -e .summary "$out" >/dev/null 2>&1; then
    log "  $t/$name: oha produced no JSON: $(head -c 300 "$RAW/$t-$name.err")"
    R[$t.$name.ok]=0; R[$t.$name.cpu1k]=NaN; return 0
  fi
  local ok total
  ok=$(jq '[.statusCodeDistribution["200"] // 0] | add' "$out")
  total=$(jq '[.statusCodeDistribution[]?] + [.errorDistribution[]?] | add // 0' "$out")
  R[$t.$name.ok]=$ok
  R[$t.$name.bad]=$((total - ok))
  R[$t.$name.rps]=$(jq '.summary.requestsPerSec | floor' "$out")
  R[$t.$name.p50]=$(jq '.latencyPercentiles.p50 * 1000' "$out")
  R[$t.$name.p99]=$(jq '.latencyPercentiles.p99 * 1000' "$out")
  R[$t.$name.cpu1k]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$ok" 'BEGIN { if (n > 0) printf "%.4f", d / hz / n * 1000; else print "NaN" }')
  R[$t.$name.cpus]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", d / hz }')
  # proxy CPU utilisation over the phase, % of one core
  R[$t.$name.util]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$(jq .summary.total "$out")" 'BEGIN { if (s > 0) printf "%.0f", d / hz / s * 100; else print "NaN" }')
  if ((total - ok > 0)); then
    log "  $t/$name: $((total - ok)) of $total requests failed: $(jq -c '.statusCodeDistribution, .errorDistribution' "$out" | tr '\n' ' ')"
  fi
  log "  $t/$name: ok=$ok rps=${R[$t.$name.rps]} p50=$(printf %.3f "${R[$t.$name.p50]}")ms p99=$(printf %.3f "${R[$t.$name.p99]}")ms proxy-cpu=${R[$t.$name.cpus]}s (${R[$t.$name.util]}% of a core)"
}

probe() { # check a target answers a chat completion and a stream correctly
  local t=$1 hdr=() body
  [[ -n ${AUTH[$t]} ]] && hdr=(-H "Authorization: Bearer ${AUTH[$t]}")
  body=$(curl -sS --max-time 5 -w '\n%{http_code}' -H 'content-type: application/json' "${hdr[@]}" -d "$BODY" "${URL[$t]}" 2>&1) || true
  if [[ $(tail -n1 <<<"$body") != 200 ]] || ! head -n -1 <<<"$body" | jq -e '.choices[0].message.content' >/dev/null 2>&1; then
    echo "chat completion probe failed: $(head -c 400 <<<"$body" | tr '\n' ' ')"; return 1
  fi
  local model=bench sbody
  [[ $t == ferrolite ]] && model=bench-stream
  sbody='{"model":"'$model'","messages":[{"role":"user","content":"hello"}],"stream":true,"stream_options":{"include_usage":true}}'
  body=$(curl -sS -N --max-time 5 -H 'content-type: application/json' "${hdr[@]}" -d "$sbody" "${STREAM_URL[$t]}" 2>&1) || true
  if ! grep -q '^data: \[DONE\]' <<<"$body"; then
    echo "streaming probe failed: $(head -c 400 <<<"$body" | tr '\n' ' ')"; return 1
  fi
}

run_target() {
  local t=$1 pids
  log "== $t (${URL[$t]})"
  if [[ ${STATUS[$t]} != ok ]]; then log "  skipped: ${STATUS[$t]}"; return; fi
  local err
  if ! err=$(probe "$t"); then STATUS[$t]=$err; log "  skipped: $err"; return; fi
  pids=$(proxy_pids "$t")
  oha_run "$t" warmup -n "$WARMUP_REQUESTS" -c 16 >/dev/null
  oha_run "$t" rate200 -z "${RATE_SECS}s" -w -q 200 -c "$RATE_CONNS" --latency-correction
  oha_run "$t" rate1000 -z "${RATE_SECS}s" -w -q 1000 -c "$RATE_CONNS" --latency-correction
  oha_run "$t" max -z "${MAX_SECS}s" -w -c "$MAX_CONNS"
  # streaming TTFB (slow-stream upstream: frames ${STREAM_CHUNK_DELAY_MS} ms apart)
  local model=bench hdr=()
  [[ $t == ferrolite ]] && model=bench-stream
  [[ -n ${AUTH[$t]} ]] && hdr=(--auth "${AUTH[$t]}")
  "${CLIENT_PIN[@]}" "$REL/ttfb" --url "${STREAM_URL[$t]}" --model "$model" "${hdr[@]}" -n "$TTFB_REQUESTS" -c 4 --warmup 10 \
    >"$RAW/$t-ttfb.json" 2>"$RAW/$t-ttfb.err" || true
  if jq -e .ttfb_ms "$RAW/$t-ttfb.json" >/dev/null 2>&1; then
    R[$t.ttfb.p50]=$(jq .ttfb_ms.p50 "$RAW/$t-ttfb.json"); R[$t.ttfb.p99]=$(jq .ttfb_ms.p99 "$RAW/$t-ttfb.json")
    R[$t.ttfb.total50]=$(jq .total_ms.p50 "$RAW/$t-ttfb.json"); R[$t.ttfb.errors]=$(jq .errors "$RAW/$t-ttfb.json")
    log "  $t/ttfb: p50=${R[$t.ttfb.p50]}ms p99=${R[$t.ttfb.p99]}ms (whole stream p50 ${R[$t.ttfb.total50]}ms, errors ${R[$t.ttfb.errors]})"
  else
    log "  $t/ttfb: failed: $(head -c 300 "$RAW/$t-ttfb.err" "$RAW/$t-ttfb.json")"
  fi
  # soak: SOAK_REQUESTS closed-loop in two halves, RSS after each half
  local half=$((SOAK_REQUESTS / 2))
  oha_run "$t" soak1 -n "$half" -c "$MAX_CONNS"
  R[$t.rss.soak1]=$(status_kb VmRSS $(proxy_pids "$t"))
  oha_run "$t" soak2 -n "$half" -c "$MAX_CONNS"
  R[$t.rss.soak2]=$(status_kb VmRSS $(proxy_pids "$t"))
  R[$t.rss.hwm]=$(status_kb VmHWM $(proxy_pids "$t"))
  # CPU over the whole soak (most samples)
  R[$t.soak.cpu1k]=$(awk -v a="${R[$t.soak1.cpu1k]}" -v b="${R[$t.soak2.cpu1k]}" 'BEGIN { printf "%.4f", (a + b) / 2 }')
  log "  $t/rss: idle $(mb "${IDLE_RSS[$t]}") MB, after soak halves $(mb "${R[$t.rss.soak1]}") / $(mb "${R[$t.rss.soak2]}") MB, peak $(mb "${R[$t.rss.hwm]}") MB"
}

for t in $TARGETS; do run_target "$t"; done

# ---------------------------------------------------------------- report
v() { local x=${R[$1]:-}; [[ -z $x || $x == NaN ]] && echo "—" || printf "%.${2:-2}f" "$x"; }
vi() { local x=${R[$1]:-}; [[ -z $x ]] && echo "—" || echo "$x"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || a == "NaN" || b == "NaN" || b + 0 == 0) print "—"; else printf "%.2f×", a / b }'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "") print "—"; else printf "%+.3f", a - b }'; }
rssmb() { local x=$1; [[ -z $x ]] && echo "—" || mb "$x"; }

{
  echo "# ferrolite benchmark — $TS"
  echo
  echo "- mode: $([[ $QUICK == 1 ]] && echo "QUICK (smoke run; figures are rough)" || echo full)"
  echo "- machine: $NCPU CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r)"
  echo "- pinning: $PIN_DESC"
  echo "- load generator: $OHA_VERSION; nginx: $("$NGINX" -v 2>&1 | sed 's/.*: //')"
  ((FL_BUILD_FAILED)) && [[ ${STATUS[ferrolite]:-} == ok ]] && echo "- **WARNING: cargo build -p ferrolite-server failed; the ferrolite figures come from an older binary ($FERROLITE_BIN)**"
  echo "- workspace: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo 'no commit') $(cd "$ROOT" && [[ -n $(git status --porcelain 2>/dev/null | head -1) ]] && echo '(dirty)')"
  echo "- phases: fixed rate ${RATE_SECS}s at 200 and 1000 RPS ($RATE_CONNS connections, latency-corrected); max throughput ${MAX_SECS}s closed loop, $MAX_CONNS connections; soak $SOAK_REQUESTS requests closed loop; TTFB $TTFB_REQUESTS streams (4 at a time, upstream frames ${STREAM_CHUNK_DELAY_MS} ms apart)"
  echo
  echo "## Latency and throughput (ms)"
  echo
  echo "| target | p50 @200 | p99 @200 | p50 @1k | p99 @1k | max RPS | proxy CPU at max | stream TTFB p50 | TTFB p99 | whole stream p50 |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in $TARGETS; do
    if [[ ${STATUS[$t]:-} != ok ]]; then echo "| $t | FAILED: ${STATUS[$t]:-not run} | | | | | | | | |"; continue; fi
    echo "| $t | $(v $t.rate200.p50 3) | $(v $t.rate200.p99 3) | $(v $t.rate1000.p50 3) | $(v $t.rate1000.p99 3) | $(vi $t.max.rps) | $(vi $t.max.util)% | $(v $t.ttfb.p50 3) | $(v $t.ttfb.p99 3) | $(v $t.ttfb.total50 1) |"
  done
  echo
  echo "\"proxy CPU at max\" is the proxy's CPU use during the max-throughput phase in % of one core: well under 100% (with PIN=1) means the client core (load generator + mock), not the proxy, was the limit."
  echo
  echo "## Proxy CPU and memory"
  echo
  echo "CPU-seconds per 1,000 requests of the proxy process (nginx: master + workers; direct: the mock itself)."
  echo
  echo "| target | CPU-s/1k @200 | CPU-s/1k @1k | CPU-s/1k max | CPU-s/1k soak | idle RSS MB | RSS after soak/2 MB | RSS after soak MB | peak RSS (VmHWM) MB |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in $TARGETS; do
    [[ ${STATUS[$t]:-} != ok ]] && { echo "| $t | FAILED | | | | | | | |"; continue; }
    echo "| $t | $(v $t.rate200.cpu1k 4) | $(v $t.rate1000.cpu1k 4) | $(v $t.max.cpu1k 4) | $(v $t.soak.cpu1k 4) | $(rssmb "${IDLE_RSS[$t]:-}") | $(rssmb "${R[$t.rss.soak1]:-}") | $(rssmb "${R[$t.rss.soak2]:-}") | $(rssmb "${R[$t.rss.hwm]:-}") |"
  done
  echo
  echo "## Ratios"
  echo
  echo "Added latency = target − direct, in ms (same run)."
  echo
  echo "| target | +p50 @200 | +p99 @200 | +p50 @1k | +p99 @1k | +TTFB p50 | max RPS vs direct |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for t in $TARGETS; do
    [[ $t == direct || ${STATUS[$t]:-} != ok || ${STATUS[direct]:-} != ok ]] && continue
    echo "| $t | $(diffms "${R[$t.rate200.p50]:-}" "${R[direct.rate200.p50]:-}") | $(diffms "${R[$t.rate200.p99]:-}" "${R[direct.rate200.p99]:-}") | $(diffms "${R[$t.rate1000.p50]:-}" "${R[direct.rate1000.p50]:-}") | $(diffms "${R[$t.rate1000.p99]:-}" "${R[direct.rate1000.p99]:-}") | $(diffms "${R[$t.ttfb.p50]:-}" "${R[direct.ttfb.p50]:-}") | $(ratio "${R[$t.max.rps]:-}" "${R[direct.max.rps]:-}") |"
  done
  echo
  if [[ ${STATUS[ferrolite]:-} == ok && ${STATUS[nginx]:-} == ok ]]; then
    echo "ferrolite ÷ nginx (target: CPU per request ≤ 2×):"
    echo
    echo "| metric | ferrolite ÷ nginx |"
    echo "|---|---:|"
    echo "| CPU per request @1k RPS | $(ratio "${R[ferrolite.rate1000.cpu1k]:-}" "${R[nginx.rate1000.cpu1k]:-}") |"
    echo "| CPU per request, soak (closed loop) | $(ratio "${R[ferrolite.soak.cpu1k]:-}" "${R[nginx.soak.cpu1k]:-}") |"
    echo "| CPU per request @200 RPS | $(ratio "${R[ferrolite.rate200.cpu1k]:-}" "${R[nginx.rate200.cpu1k]:-}") |"
    echo "| max RPS | $(ratio "${R[ferrolite.max.rps]:-}" "${R[nginx.max.rps]:-}") |"
    echo "| p99 @1k RPS | $(ratio "${R[ferrolite.rate1000.p99]:-}" "${R[nginx.rate1000.p99]:-}") |"
    echo "| peak RSS | $(ratio "${R[ferrolite.rss.hwm]:-}" "${R[nginx.rss.hwm]:-}") |"
  else
    echo "ferrolite ÷ nginx: not available (ferrolite: ${STATUS[ferrolite]:-not run}; nginx: ${STATUS[nginx]:-not run})."
  fi
  echo
  echo "## Failures"
  echo
  any=0
  for t in $TARGETS; do
    [[ ${STATUS[$t]:-} != ok ]] && { echo "- $t: ${STATUS[$t]:-not run}"; any=1; }
    for ph in rate200 rate1000 max soak1 soak2; do
      if [[ -n ${R[$t.$ph.bad]:-} && ${R[$t.$ph.bad]} != 0 ]]; then echo "- $t/$ph: ${R[$t.$ph.bad]} non-200 or failed requests"; any=1; fi
    done
    if [[ -n ${R[$t.ttfb.errors]:-} && ${R[$t.ttfb.errors]} != 0 ]]; then echo "- $t/ttfb: ${R[$t.ttfb.errors]} failed streams"; any=1; fi
  done
  ((any)) || echo "none"
  echo
  echo "Raw data: \`bench/results/$TS-raw/\`"
} >"$REPORT"

echo
cat "$REPORT"
log "report written to $REPORT"
