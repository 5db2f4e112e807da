#!/bin/bash
# `make run`: the single-node development cluster on 127.0.0.1 (kiseki-meta
# on 7100, kiseki-chunkd with 6 device directories on 7200, kiseki-s3d on
# 9000), data under one directory (KS_DEV_DIR, default var/dev), binaries
# from BUILD/bin.
#
# First run: `kiseki init --dir DATA` writes the node's configs and makes
# the data and key directories; once meta is up, a tenant `dev` and an
# access key are made and the key written to DATA/credentials (profile
# kiseki).  Later runs find the configs and the credentials and change
# nothing: every run keeps all data.  Ctrl-C or SIGTERM stops the daemons
# (s3d first, then chunkd and meta) and waits for them.  If a daemon
# exits on its own, the others are stopped too and the status is 1.
set -u
build=${1:-build}
bin=$build/bin
data=${KS_DEV_DIR:-var/dev}
endpoint=http://127.0.0.1:9000
meta_addr=127.0.0.1:7100
pids=()
names=()

die() {
  echo "run-dev: $*" >&2
  exit 1
}

for b in kiseki kiseki-meta kiseki-chunkd kiseki-s3d; do
  [ -x "$bin/$b" ] || die "$bin/$b is not built (make build)"
done

if [ ! -f "$data/node.json" ]; then
  if [ -f "$data/meta.json" ]; then
    die "$data has per-daemon configs from an older Kiseki; run: $bin/kiseki init --dir $data --force (data is kept)"
  fi
  "$bin/kiseki" init --dir "$data" >/dev/null || die "kiseki init failed"
  echo "Initialized $data (kiseki init)"
fi
shown=$data/credentials # as the user named it, for the example
data=$(cd "$data" && pwd)
creds=$data/credentials

# Bytes in a log before a start, so only this start's lines are searched.
log_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

start() { # name args...
  local name=$1
  shift
  local log=$data/$name.log
  eval "off_${name//-/_}=$(log_size "$log")"
  # own session: Ctrl-C reaches only this script, which stops the daemons
  # one by one (a second stop signal would make a daemon exit at once)
  setsid "$bin/$name" "$@" --log.file="$log" &
  pids+=($!)
  names+=("$name")
  printf '  %-14s pid %-7s log %s\n' "$name" "$!" "$log"
}

# Wait until NAME logged event=EVENT in this start (20 s), or it exited.
wait_event() { # name event
  local name=$1 event=$2 off_var="off_${1//-/_}" i
  local log=$data/$name.log
  for ((i = 0; i < 200; i++)); do
    tail -c +$((${!off_var} + 1)) "$log" 2>/dev/null | grep -q "event=$event" &&
      return 0
    for j in "${!names[@]}"; do
      if [ "${names[$j]}" = "$name" ] && ! kill -0 "${pids[$j]}" 2>/dev/null; then
        echo "run-dev: $name exited; last lines of $log:" >&2
        tail -n 5 "$log" >&2
        return 1
      fi
    done
    sleep 0.1
  done
  echo "run-dev: $name not $event after 20 s; see $log" >&2
  return 1
}

# s3d first (it holds clients of the others), then the rest.
stop() {
  trap - INT TERM
  echo
  echo "stopping..."
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null
    wait "${pids[$i]}" 2>/dev/null
  done
  exit "${1:-0}"
}
trap stop INT TERM

credentials() {
  [ -f "$creds" ] && return 0
  # a tenant made by an earlier run whose key was lost is kept
  "$bin/kiseki" tenant create dev --meta "$meta_addr" >/dev/null 2>&1 ||
    echo "  (tenant dev exists)"
  "$bin/kiseki" key create --tenant dev --meta "$meta_addr" \
    --credentials "$creds" --profile kiseki >/dev/null ||
    return 1
  echo "  new access key for tenant dev in $creds"
}

cred() { # field
  sed -n "/^\[kiseki\]/,/^\[/s/^$1 *= *//p" "$creds" | head -n 1
}

echo "Kiseki development cluster ($data)"
start kiseki-meta --config "$data/node.json"
wait_event kiseki-meta ready || stop 1
start kiseki-chunkd --config "$data/node.json"
wait_event kiseki-chunkd ready || stop 1
start kiseki-s3d --config "$data/node.json"
wait_event kiseki-s3d ready || stop 1
credentials || stop 1
wait_event kiseki-s3d devices_listed || stop 1

cat <<EOF

  endpoint           $endpoint
  access key         $(cred aws_access_key_id)
  secret             $(cred aws_secret_access_key)
  credentials file   $creds (profile kiseki)

  AWS_SHARED_CREDENTIALS_FILE=$shown aws --profile kiseki --endpoint-url $endpoint s3 ls

Ctrl-C stops the cluster; data stays in $data.
EOF
wait -n
echo "run-dev: a daemon exited; logs are in $data" >&2
stop 1
