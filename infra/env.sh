# Shared settings of the local stack; sourced by infra/up, infra/down, infra/test, infra/bench.
# Everything is overridable from the environment.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${JOBS_STATE_DIR:-$ROOT/.local}          # git-ignored: pids, logs, env files, emulator data
LOCALSTACK_PORT=${LOCALSTACK_PORT:-4566}       # S3 + SQS + SNS + SES
MOTO_PORT=${MOTO_PORT:-4568}                   # DynamoDB
LAMBDA_PORT=${LAMBDA_PORT:-9000}               # cargo lambda watch (Lambda Invoke API)
API_PORT=${API_PORT:-3000}                     # HTTP API (API Gateway stand-in)
IMAGES_PORT=${IMAGES_PORT:-8090}               # sample images for Retail Pulse jobs (python3 -m http.server)
ISSUER_PORT=${ISSUER_PORT:-$((API_PORT + 1))}  # the local issuer (stands in for Cognito), served by the bridge: 3001
WS_PORT=${WS_PORT:-$((API_PORT + 2))}          # the WebSocket API (live job updates) and its @connections, served by the bridge: 3002
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
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$MOTO_PORT
export S3_FORCE_PATH_STYLE=true
export SAM_CLI_TELEMETRY=0
export API_URL=http://127.0.0.1:$API_PORT
export ISSUER_URL=http://127.0.0.1:$ISSUER_PORT  # OIDC discovery, JWKS, /oauth2/authorize, /oauth2/token, /logout
export WS_URL=ws://127.0.0.1:$WS_PORT            # live job updates: $WS_URL/?token=...[&job_id=...], $WS_URL/ws/jobs/{job_id}?token=...
export IMAGES_URL=http://127.0.0.1:$IMAGES_PORT  # serves events/samples/images/
export FAULT_URL=http://127.0.0.1:$FAULT_PORT    # the fault proxy's control: GET/POST $FAULT_URL/__faults
export LAMBDA_PORT JOBS_STATE_DIR="$STATE"

# The template parameters of the local stack: the bridge's issuer instead of Cognito, the local
# clients as the audience (infra/local-bridge/src/auth.rs), the dashboard signing in there.
TEMPLATE_PARAMS=(-p "AuthIssuer=$ISSUER_URL" -p "AuthAudience=local-dashboard,local-machine"
  -p "AuthClientId=local-dashboard" -p "AuthOAuthUrl=$ISSUER_URL" -p "DashboardUrl=$API_URL/")
case "$AUTH" in
  off) TEMPLATE_PARAMS+=(-p AuthMode=off) ;;
  on) ;;
  *) echo "AUTH must be on or off, not $AUTH" >&2; exit 2 ;;
esac

say() { printf '\033[1m[local]\033[0m %s\n' "$*" >&2; }

# Tools (LocalStack, moto, cargo-lambda, sam, aws), pinned, installed outside the repo.
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
    mkdir -p "$STATE/localstack"
    say "starting LocalStack (S3, SQS, SNS, SES) on 127.0.0.1:$LOCALSTACK_PORT"
    start localstack env GATEWAY_LISTEN=127.0.0.1:$LOCALSTACK_PORT LOCALSTACK_HOST=127.0.0.1:$LOCALSTACK_PORT \
      SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
      LOCALSTACK_VOLUME_DIR="$STATE/localstack" SERVICES=s3,sqs,sns,ses localstack-python -m localstack.runtime.main
  fi
  if ! pid_alive moto; then
    say "starting moto (DynamoDB) on 127.0.0.1:$MOTO_PORT"
    local moto_python
    moto_python="$(dirname "$(readlink -f "$(command -v moto_server)")")/python"
    start moto "$moto_python" "$ROOT/infra/moto_serial.py" 127.0.0.1 "$MOTO_PORT"
  fi
  wait_for localstack "http://127.0.0.1:$LOCALSTACK_PORT/_localstack/health" 90
  wait_for moto "http://127.0.0.1:$MOTO_PORT/moto-api/" 60
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
      --moto "$MOTO_PORT" --rate "$FAULT_RATE" --seed "$FAULT_SEED"
    wait_for faultproxy "$FAULT_URL/__faults" 10
  else
    curl -fsS -o /dev/null -X POST "$FAULT_URL/__faults?rate=$FAULT_RATE&seed=$FAULT_SEED"
    say "fault proxy already running on $FAULT_URL; rate set to $FAULT_RATE, seed $FAULT_SEED"
  fi
  FUNCTION_S3=$FAULT_URL FUNCTION_SQS=$FAULT_URL FUNCTION_DYNAMODB=$FAULT_URL
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
