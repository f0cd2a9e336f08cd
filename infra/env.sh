# Shared settings of the local stack; sourced by infra/up, infra/down, infra/test, infra/bench.
# Everything is overridable from the environment.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${JOBS_STATE_DIR:-$ROOT/.local}          # git-ignored: pids, logs, env files, emulator data
LOCALSTACK_PORT=${LOCALSTACK_PORT:-4566}       # S3 + SQS + SNS + SES + CloudWatch
# DynamoDB: AWS's DynamoDB Local (Java, from infra/tools.sh), data kept in $DYNAMODB_DATA across
# restarts (DYNAMODB_FRESH=1 infra/up starts it empty); DYNAMODB_EMULATOR=moto for moto server instead
# (in memory, serialised by infra/moto_serial.py). MOTO_PORT is the older name of DYNAMODB_PORT.
DYNAMODB_EMULATOR=${DYNAMODB_EMULATOR:-local}
# DynamoDB Local's data lives outside the source tree: `cargo lambda watch` watches the whole
# workspace (one watcher per function instance, 48 at LAMBDA_CONCURRENCY=8) and stat()s every event,
# ignored or not; SQLite creates and deletes its journal in every transaction, and with the data in
# .local that cost a full core at ~30 transactions/s (measured: 13,000 stat calls a second). One
# folder per state dir; a stack's data from before this move is moved there on its next start.
STACK_KEY=$(printf %s "$STATE" | sha256sum | cut -c1-16)
DYNAMODB_DATA=${DYNAMODB_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/serverless-jobs/dynamodb/$STACK_KEY}
# LocalStack's files (its CloudWatch SQLite database, written at every PutMetricData) likewise.
LOCALSTACK_DATA=${LOCALSTACK_DATA:-${XDG_CACHE_HOME:-$HOME/.cache}/serverless-jobs/localstack/$STACK_KEY}
DYNAMODB_PORT=${DYNAMODB_PORT:-${MOTO_PORT:-4568}}
LAMBDA_PORT=${LAMBDA_PORT:-9000}               # cargo lambda watch (Lambda Invoke API)
API_PORT=${API_PORT:-3000}                     # HTTP API (API Gateway stand-in)
IMAGES_PORT=${IMAGES_PORT:-8090}               # sample images for Retail Pulse jobs (python3 -m http.server)
ISSUER_PORT=${ISSUER_PORT:-$((API_PORT + 1))}  # the local issuer (stands in for Cognito), served by the bridge: 3001
WS_PORT=${WS_PORT:-$((API_PORT + 2))}          # the WebSocket API (live job updates) and its @connections, served by the bridge: 3002
LAMBDA_API_PORT=${LAMBDA_API_PORT:-$((API_PORT + 3))}  # Lambda's event source mapping API (pause/resume a queue), served by the bridge: 3003
# Sign-in (README "Sign-in"): AUTH=off infra/up starts the stack without authorization (AuthMode=off).
AUTH=${AUTH:-on}
STACK_NAME=${STACK_NAME:-jobs-local}
# Fault injection (opt-in): FAULT_PROXY=1 infra/up starts infra/fault-proxy.py on FAULT_PORT and points
# the *functions'* endpoints at it (bridge, tests and benches keep the direct ones). FAULT_RATE is
# the share of requests that get a fault, FAULT_SEED fixes the sequence; change them while it runs
# with `curl -X POST "$FAULT_URL/__faults?rate=0.2"`. See infra/bench/faults.
FAULT_PROXY=${FAULT_PROXY:-0}
FAULT_PORT=${FAULT_PORT:-$((LOCALSTACK_PORT + 4))}
FAULT_RATE=${FAULT_RATE:-0.1}
FAULT_SEED=${FAULT_SEED:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# What the functions and the tests see: endpoints only through the SDK's standard variables.
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$LOCALSTACK_PORT
export AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$LOCALSTACK_PORT
export AWS_ENDPOINT_URL_SNS=http://127.0.0.1:$LOCALSTACK_PORT
export AWS_ENDPOINT_URL_SES=http://127.0.0.1:$LOCALSTACK_PORT
export AWS_ENDPOINT_URL_CLOUDWATCH=http://127.0.0.1:$LOCALSTACK_PORT  # metrics (the bridge's EMF relay, the api's metrics view)
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DYNAMODB_PORT
export S3_FORCE_PATH_STYLE=true
export SAM_CLI_TELEMETRY=0
# LocalStack publishes the queues' AWS/SQS depth metrics (ApproximateNumberOfMessagesVisible, ...) every
# this many seconds (AWS: every minute); the bridge's alarms evaluate every LOCAL_ALARM_PERIOD_SECONDS.
export SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL=${SQS_CLOUDWATCH_METRICS_REPORT_INTERVAL:-10}
export LOCAL_ALARM_PERIOD_SECONDS=${LOCAL_ALARM_PERIOD_SECONDS:-10}
export API_URL=http://127.0.0.1:$API_PORT
export ISSUER_URL=http://127.0.0.1:$ISSUER_PORT  # OIDC discovery, JWKS, /oauth2/authorize, /oauth2/token, /logout
export WS_URL=ws://127.0.0.1:$WS_PORT            # live job updates: $WS_URL/?token=...[&job_id=...], $WS_URL/ws/jobs/{job_id}?token=...
export IMAGES_URL=http://127.0.0.1:$IMAGES_PORT  # serves events/samples/images/
export FAULT_URL=http://127.0.0.1:$FAULT_PORT    # the fault proxy's control: GET/POST $FAULT_URL/__faults
export LAMBDA_PORT JOBS_STATE_DIR="$STATE"
export LAMBDA_API_URL=http://127.0.0.1:$LAMBDA_API_PORT  # the bridge's ListEventSourceMappings / UpdateEventSourceMapping

# The template parameters of the local stack: the bridge's issuer instead of Cognito, the local
# clients as the audience (infra/local-bridge/src/auth.rs), the dashboard signing in there
# and connecting to the bridge's WebSocket API for live updates.
TEMPLATE_PARAMS=(-p "AuthIssuer=$ISSUER_URL" -p "AuthAudience=local-dashboard,local-machine"
  -p "AuthClientId=local-dashboard" -p "AuthOAuthUrl=$ISSUER_URL" -p "DashboardUrl=$API_URL/"
  -p "LiveUrlOverride=$WS_URL")
case "$AUTH" in
  off) TEMPLATE_PARAMS+=(-p AuthMode=off) ;;
  on) ;;
  *) echo "AUTH must be on or off, not $AUTH" >&2; exit 2 ;;
esac

say() { printf '\033[1m[local]\033[0m %s\n' "$*" >&2; }

# Tools (LocalStack, DynamoDB Local, moto, cargo-lambda, sam, aws), pinned, installed outside the repo.
tools_path() {
  local bin
  bin=$(bash "$ROOT/infra/tools.sh" --print-bin) || { say "installing tools failed"; return 1; }
  export PATH="$bin:$PATH"
}

pid_alive() { [ -f "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }

# start NAME CMD...: runs CMD in its own session (PID = process group), logs to $STATE/logs/NAME.log
start() {
  local name=$1; shift
  mkdir -p "$STATE/pids" "$STATE/logs"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$STATE/pids/$name"
}

# stop NAME: SIGTERM the process group, SIGKILL after 10 s
stop() {
  local name=$1 pid
  [ -f "$STATE/pids/$name" ] || return 0
  pid=$(cat "$STATE/pids/$name")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$STATE/pids/$name"
}

# wait_for NAME URL SECONDS
wait_for() {
  local name=$1 url=$2 secs=$3 i
  for i in $(seq 1 $((secs * 10))); do
    curl -fs -o /dev/null "$url" && return 0
    pid_alive "$name" || { say "$name exited; last log lines:"; tail -n 30 "$STATE/logs/$name.log" >&2; return 1; }
    sleep 0.1
  done
  say "$name not ready after ${secs}s; last log lines:"; tail -n 30 "$STATE/logs/$name.log" >&2
  return 1
}

start_emulators() {
  if [ "${EXTERNAL_EMULATORS:-0}" = 1 ]; then   # e.g. LocalStack's Docker container (README)
    say "using emulators already running on $AWS_ENDPOINT_URL_SQS and $AWS_ENDPOINT_URL_DYNAMODB"
    curl -fs -o /dev/null "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" || { say "nothing answers on $LOCALSTACK_PORT"; return 1; }
    return 0
  fi
  if ! pid_alive localstack; then
    # TMPDIR of its own: in host mode LocalStack keeps its CloudWatch data (metrics.db) in
    # $TMPDIR/localstack/state and deletes $TMPDIR/localstack when it starts and stops, so with
    # the default /tmp every stack on the machine shared one metrics database, and another stack's
    # start or stop deleted it under this one ("unable to open database file").
    # Outside the source tree, as DynamoDB Local's data (above).
    mkdir -p "$LOCALSTACK_DATA/tmp"
    say "starting LocalStack (S3, SQS, SNS, SES, CloudWatch) on 127.0.0.1:$LOCALSTACK_PORT"
    start localstack env GATEWAY_LISTEN=127.0.0.1:$LOCALSTACK_PORT LOCALSTACK_HOST=127.0.0.1:$LOCALSTACK_PORT \
      SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 TMPDIR="$LOCALSTACK_DATA/tmp" \
      LOCALSTACK_VOLUME_DIR="$LOCALSTACK_DATA" SERVICES=s3,sqs,sns,ses,cloudwatch localstack-python -m localstack.runtime.main
  fi
  case "$DYNAMODB_EMULATOR" in
    local)
      pid_alive moto && stop moto   # a stack started with DYNAMODB_EMULATOR=moto before
      if ! pid_alive dynamodb; then
        if [ -d "$STATE/dynamodb" ] && [ ! -e "$DYNAMODB_DATA" ]; then
          say "moving DynamoDB Local's data out of the source tree: $STATE/dynamodb -> $DYNAMODB_DATA"
          mkdir -p "$(dirname "$DYNAMODB_DATA")" && mv "$STATE/dynamodb" "$DYNAMODB_DATA"
        fi
        if [ "${DYNAMODB_FRESH:-0}" = 1 ]; then
          say "DYNAMODB_FRESH=1: starting DynamoDB Local empty (removing $DYNAMODB_DATA)"
          rm -rf "$DYNAMODB_DATA"
        fi
        mkdir -p "$DYNAMODB_DATA"
        say "starting DynamoDB Local on 127.0.0.1:$DYNAMODB_PORT (data in $DYNAMODB_DATA)"
        # -sharedDb: one database whatever the credentials and region; the heap stays small (the data is
        # in SQLite on disk); serial GC and the C1 compiler only: 2 cores shared by the whole stack, and
        # ready (and warm) in about half the time (measured: 3-4 s instead of 6-8 s on a loaded machine).
        # Run in its data folder: it writes dynamodb-local-metadata.json into its working directory.
        (cd "$DYNAMODB_DATA" && start dynamodb env \
          DYNAMODB_LOCAL_JAVA_OPTS="${DYNAMODB_LOCAL_JAVA_OPTS:--Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}" \
          dynamodb-local -port "$DYNAMODB_PORT" -sharedDb -dbPath "$DYNAMODB_DATA" -disableTelemetry)
      elif [ "${DYNAMODB_FRESH:-0}" = 1 ]; then
        say "DYNAMODB_FRESH=1 ignored: DynamoDB Local is running (infra/down first)"
      fi
      ;;
    moto)
      pid_alive dynamodb && stop dynamodb
      if ! pid_alive moto; then
        say "starting moto (DynamoDB, in memory) on 127.0.0.1:$DYNAMODB_PORT"
        local moto_python
        moto_python="$(dirname "$(readlink -f "$(command -v moto_server)")")/python"
        start moto "$moto_python" "$ROOT/infra/moto_serial.py" 127.0.0.1 "$DYNAMODB_PORT"
      fi
      ;;
    *) say "DYNAMODB_EMULATOR must be local or moto, not $DYNAMODB_EMULATOR"; return 2 ;;
  esac
  wait_for localstack "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" 90
  case "$DYNAMODB_EMULATOR" in
    local) wait_for_answer dynamodb "$AWS_ENDPOINT_URL_DYNAMODB/" 60 ;;
    moto) wait_for moto "$AWS_ENDPOINT_URL_DYNAMODB/moto-api/" 60 ;;
  esac
}

# The endpoints the functions get (watch.env): the emulators, or the fault proxy with FAULT_PROXY=1.
start_fault_proxy() {
  if [ "$FAULT_PROXY" != 1 ]; then
    pid_alive faultproxy && stop faultproxy
    FUNCTION_S3=$AWS_ENDPOINT_URL_S3 FUNCTION_SQS=$AWS_ENDPOINT_URL_SQS FUNCTION_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB
    return 0
  fi
  if ! pid_alive faultproxy; then
    say "starting the fault proxy on $FAULT_URL (rate $FAULT_RATE, seed $FAULT_SEED) for the functions' endpoints"
    start faultproxy python3 -u "$ROOT/infra/fault-proxy.py" --listen "$FAULT_PORT" --localstack "$LOCALSTACK_PORT" \
      --dynamodb "$DYNAMODB_PORT" --rate "$FAULT_RATE" --seed "$FAULT_SEED"
    wait_for faultproxy "$FAULT_URL/__faults" 10
  else
    curl -fsS -o /dev/null -X POST "$FAULT_URL/__faults?rate=$FAULT_RATE&seed=$FAULT_SEED"
    say "fault proxy already running on $FAULT_URL; rate set to $FAULT_RATE, seed $FAULT_SEED"
  fi
  FUNCTION_S3=$FAULT_URL FUNCTION_SQS=$FAULT_URL FUNCTION_DYNAMODB=$FAULT_URL
}

# wait_for_answer NAME URL SECONDS: until the URL gives any HTTP answer (DynamoDB Local answers 400 to a GET)
wait_for_answer() {
  local name=$1 url=$2 secs=$3 i
  for i in $(seq 1 $((secs * 10))); do
    curl -s -o /dev/null "$url" && return 0
    pid_alive "$name" || { say "$name exited; last log lines:"; tail -n 30 "$STATE/logs/$name.log" >&2; return 1; }
    sleep 0.1
  done
  say "$name not answering after ${secs}s; last log lines:"; tail -n 30 "$STATE/logs/$name.log" >&2
  return 1
}

# wait_for_port NAME PORT SECONDS: until something listens
wait_for_port() {
  local name=$1 port=$2 secs=$3 i
  for i in $(seq 1 $((secs * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    pid_alive "$name" || { say "$name exited; last log lines:"; tail -n 30 "$STATE/logs/$name.log" >&2; return 1; }
    sleep 0.1
  done
  say "$name not listening on $port after ${secs}s"; return 1
}
