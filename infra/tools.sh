#!/usr/bin/env bash
# Installs every non-Rust tool the project needs, pinned, into a cache dir outside the repo.
#
#   bash infra/tools.sh                       # idempotent; a rerun is a no-op (stamp = sha256 of this file)
#   export PATH="$(bash infra/tools.sh --print-bin):$PATH"   # install if needed, print the bin dir
#   bash infra/tools.sh --browser             # the browser test's: chromium (apt) and tests/browser's npm packages
#
# DynamoDB Local (the local stack's DynamoDB) is installed by every run but --browser, with its own
# stamp (the block between the dynamodb-local markers is outside the main stamp: changing its pin
# reinstalls nothing else): `npm pack` of amplify-dynamodb-simulator (its emulator/ folder is AWS's
# DynamoDB Local jar with DynamoDBLocal_lib/, sqlite4java for Linux included), checked against the
# registry's sha512, unpacked into $TOOLS_DIR/dynamodb-local/; Java (Debian's default-jre-headless,
# OpenJDK 17) with apt-get when there is no `java`. bin/dynamodb-local runs it.
# DynamoDB Local is AWS's software under AWS's own licence (dynamodb-local/LICENSE.txt), not open source.
#
# Needs only: python3 (>= 3.10; 3.11 on our machines) with venv + pip, network to PyPI.
# Layout of $TOOLS_DIR (default ~/.cache/serverless-jobs/tools, override with JOBS_TOOLS_DIR):
#   localstack/  venv: uv + localstack-core[runtime] 4.13.1 (deps resolved as of its release date;
#                plain pip pulls newer cbor2/pyOpenSSL/psutil that break it)
#   py/          venv: moto[server], cargo-lambda (+ ziglang), aws-sam-cli, awscli v1
#   dynamodb-local/  DynamoDB Local 1.25.1 (DynamoDBLocal.jar, DynamoDBLocal_lib/)
#   bin/         cargo-lambda, zig, sam, aws, moto_server, localstack-python, dynamodb-local
#                (localstack-python is a 2-line wrapper, not a symlink: a symlinked venv python
#                 does not find its pyvenv.cfg and runs without the venv's site-packages)
# Run LocalStack with: GATEWAY_LISTEN=127.0.0.1:4566 DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 \
#   LOCALSTACK_VOLUME_DIR=DIR SERVICES=s3,sqs localstack-python -m localstack.runtime.main
set -euo pipefail

# ---- pins (changing anything here changes the stamp and triggers a reinstall) ----
UV_VERSION=0.13.9
LOCALSTACK_SPEC='localstack-core[runtime]==4.13.1'
LOCALSTACK_EXCLUDE_NEWER=2026-02-03
PY_SPECS=('moto[server]==5.2.5' 'cargo-lambda==1.9.2' 'ziglang==0.17.0' 'aws-sam-cli==1.170.0' 'awscli==1.46.2')
PY_EXCLUDE_NEWER=2026-11-01   # moto 5.2.5 was released 2026-10-27; everything resolves conflict-free as of this date

TOOLS_DIR=${JOBS_TOOLS_DIR:-$HOME/.cache/serverless-jobs/tools}
PYTHON=${JOBS_PYTHON:-python3}
SELF=$(readlink -f "${BASH_SOURCE[0]}")
STAMP="$TOOLS_DIR/.stamp"
LOG="$TOOLS_DIR/install.log"
BIN="$TOOLS_DIR/bin"
LINKS=(cargo-lambda zig sam aws moto_server localstack-python)

PRINT_BIN=0
BROWSER=0
case "${1:-}" in
  --print-bin) PRINT_BIN=1 ;;
  --browser) BROWSER=1 ;;
  '') ;;
  *) echo "usage: $0 [--print-bin | --browser]" >&2; exit 2 ;;
esac

say() { echo "tools.sh: $*" >&2; }
show_log() { if [ -s "$LOG" ]; then say "last lines of $LOG:"; tail -n 25 "$LOG" >&2; fi; }
die() { say "ERROR: $*"; show_log; exit 1; }
trap 'rc=$?; say "FAILED (exit $rc) at line $LINENO: $BASH_COMMAND"; show_log; exit $rc' ERR

# >>> browser (outside the stamp: apt and npm keep their own state, so editing this block
# reinstalls nothing else). Debian's chromium, Node.js >= 20 (playwright-core 1.65), and
# `npm ci` in tests/browser whenever its package-lock.json changed.
if [ "$BROWSER" = 1 ]; then
  browser_dir="$(dirname "$SELF")/../tests/browser"
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
  fi
  node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' \
    || die "the browser test needs Node.js >= 20 (found $(node --version)); install a newer nodejs"
  lock_sum=$(sha256sum "$browser_dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$browser_dir/node_modules/.lock.sha256" 2>/dev/null)" != "$lock_sum" ]; then
    say "npm ci in tests/browser"
    (cd "$browser_dir" && npm ci --no-audit --no-fund --ignore-scripts >&2)
    echo "$lock_sum" > "$browser_dir/node_modules/.lock.sha256"
  fi
  exit 0
fi
# <<< browser

# >>> dynamodb-local (outside the main stamp; its own is the sha256 of this block)
DDB_NPM=amplify-dynamodb-simulator@2.9.30   # ships DynamoDB Local 1.25.1 in emulator/
DDB_INTEGRITY=sha512-xTeeRLvzEfqyd5lh3bH4c0kHvSHHmmhD5ZDsHFKAQ5g2Zl6JqlFdutaQhCLHzxEp6Ry1o7TB6niIoXuQAnSewQ==
DDB_DIR="$TOOLS_DIR/dynamodb-local"
ddb_want() { sed -n '/^# >>> dynamodb-local/,/^# <<< dynamodb-local/p' "$SELF" | sha256sum | cut -d' ' -f1; }
ddb_ok() { [ "$(cat "$DDB_DIR/.stamp" 2>/dev/null)" = "$(ddb_want)" ] && [ -f "$DDB_DIR/DynamoDBLocal.jar" ] && command -v java >/dev/null; }
install_dynamodb_local() {
  mkdir -p "$BIN"
  if ! ddb_ok; then
    exec 8>"$TOOLS_DIR/.lock-dynamodb-local"
    flock 8
    if ! ddb_ok; then
      if ! command -v java >/dev/null; then
        say "installing default-jre-headless (Java for DynamoDB Local) with apt-get"
        local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq default-jre-headless >&2
      fi
      command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local ($DDB_NPM); install nodejs and npm"
      say "DynamoDB Local: npm pack $DDB_NPM into $DDB_DIR"
      local tmp; tmp=$(mktemp -d "$TOOLS_DIR/.ddb.XXXXXX")
      (cd "$tmp" && npm pack --silent --json "$DDB_NPM" > pack.json 2>>"$LOG") || { rm -rf "$tmp"; die "npm pack $DDB_NPM failed"; }
      local got
      got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$tmp/pack.json")
      [ "$got" = "$DDB_INTEGRITY" ] || { rm -rf "$tmp"; die "$DDB_NPM: integrity $got, expected $DDB_INTEGRITY"; }
      tar -xzf "$tmp"/*.tgz -C "$tmp" package/emulator
      rm -rf "$DDB_DIR"
      mv "$tmp/package/emulator" "$DDB_DIR"
      rm -rf "$tmp"
      java -Djava.library.path="$DDB_DIR/DynamoDBLocal_lib" -jar "$DDB_DIR/DynamoDBLocal.jar" -version >>"$LOG" 2>&1 \
        || die "DynamoDB Local does not start (java -jar DynamoDBLocal.jar -version)"
      ddb_want > "$DDB_DIR/.stamp"
    fi
    flock -u 8
  fi
  # JVM options from DYNAMODB_LOCAL_JAVA_OPTS (infra/env.sh sets a heap bound), the rest to DynamoDB Local.
  printf '#!/bin/sh\nexec java $DYNAMODB_LOCAL_JAVA_OPTS -Djava.library.path="%s/DynamoDBLocal_lib" -jar "%s/DynamoDBLocal.jar" "$@"\n' \
    "$DDB_DIR" "$DDB_DIR" > "$BIN/.dynamodb-local.tmp"
  chmod +x "$BIN/.dynamodb-local.tmp"
  mv -f "$BIN/.dynamodb-local.tmp" "$BIN/dynamodb-local"
}
# <<< dynamodb-local

WANT=$(sed -e '/^# >>> browser/,/^# <<< browser/d' -e '/^# >>> dynamodb-local/,/^# <<< dynamodb-local/d' "$SELF" \
  | sha256sum | cut -d' ' -f1)
up_to_date() {
  [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] || return 1
  local l
  for l in "${LINKS[@]}"; do [ -x "$BIN/$l" ] || return 1; done
}
done_ok() { install_dynamodb_local; [ "$PRINT_BIN" = 1 ] && echo "$BIN"; exit 0; }

up_to_date && done_ok

mkdir -p "$TOOLS_DIR"
exec 9>"$TOOLS_DIR/.lock"
flock 9                       # serialise concurrent runs (e.g. parallel CI steps)
up_to_date && done_ok         # another run may have finished while we waited

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set JOBS_PYTHON)"
"$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' \
  || die "$PYTHON must be Python >= 3.10 with the venv module"

say "installing into $TOOLS_DIR (log: $LOG)"
start=$SECONDS
rm -f "$STAMP"
rm -rf "$TOOLS_DIR/localstack" "$TOOLS_DIR/py" "$BIN"
: > "$LOG"
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 PIP_DISABLE_PIP_VERSION_CHECK=1

say "[1/4] localstack venv + uv $UV_VERSION"
"$PYTHON" -m venv "$TOOLS_DIR/localstack" >>"$LOG" 2>&1
"$TOOLS_DIR/localstack/bin/python" -m pip install -q "uv==$UV_VERSION" >>"$LOG" 2>&1
UV="$TOOLS_DIR/localstack/bin/uv"

say "[2/4] $LOCALSTACK_SPEC (deps as of $LOCALSTACK_EXCLUDE_NEWER)"
"$UV" pip install -p "$TOOLS_DIR/localstack/bin/python" --exclude-newer "$LOCALSTACK_EXCLUDE_NEWER" \
  "$LOCALSTACK_SPEC" >>"$LOG" 2>&1

say "[3/4] ${PY_SPECS[*]} (deps as of $PY_EXCLUDE_NEWER)"
"$PYTHON" -m venv --without-pip "$TOOLS_DIR/py" >>"$LOG" 2>&1
"$UV" pip install -p "$TOOLS_DIR/py/bin/python" --exclude-newer "$PY_EXCLUDE_NEWER" \
  "${PY_SPECS[@]}" >>"$LOG" 2>&1

say "[4/4] linking $BIN and checking"
mkdir -p "$BIN"
for t in cargo-lambda sam aws moto_server; do
  [ -x "$TOOLS_DIR/py/bin/$t" ] || die "$t missing from the py venv"
  ln -sfn "$TOOLS_DIR/py/bin/$t" "$BIN/$t"
done
# cargo-lambda (cargo-zigbuild) finds zig via PATH or `python3 -m ziglang` with whatever python3 is
# on PATH; expose the wheel's binary directly (zig locates its lib/ through /proc/self/exe).
ZIG=$("$TOOLS_DIR/py/bin/python" -c 'import ziglang, os; print(os.path.join(os.path.dirname(ziglang.__file__), "zig"))')
[ -x "$ZIG" ] || die "zig binary not found in the ziglang wheel ($ZIG)"
ln -sfn "$ZIG" "$BIN/zig"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$TOOLS_DIR/localstack/bin/python" > "$BIN/localstack-python"
chmod +x "$BIN/localstack-python"

{
  "$BIN/cargo-lambda" lambda --version
  echo "zig $("$BIN/zig" version)"
  SAM_CLI_TELEMETRY=0 "$BIN/sam" --version
  "$BIN/aws" --version
  "$TOOLS_DIR/py/bin/python" -c 'import moto; print("moto", moto.__version__)'
  "$BIN/localstack-python" -c 'import localstack.runtime.main, localstack.version as v; print("localstack", v.__version__)'
} >>"$LOG" 2>&1 || die "a tool failed its version check"
tail -n 6 "$LOG" | sed 's/^/tools.sh:   /' >&2

echo "$WANT" > "$STAMP"
say "done in $((SECONDS - start)) s; use: export PATH=\"$BIN:\$PATH\""
done_ok
