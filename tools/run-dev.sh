#!/bin/sh
# `make run`: start the single-node development cluster from BUILD/bin.
#
# What exists today is the foundation (issue #2): the RPC layer and its echo
# service.  The S3 gateway, metadata and chunk daemons arrive with issue #3;
# until then this starts only the RPC echo node, says so, and does not
# pretend to offer an S3 endpoint.
set -eu
build=${1:-build}
data=${KS_DEV_DIR:-var/dev}
port=${KS_DEV_RPC_PORT:-7250}
mkdir -p "$data"
cat <<MSG
Kiseki development node (foundation only)

  Not yet built: kiseki-s3d, kiseki-meta, kiseki-chunkd (issue #3), so there
  is no S3 endpoint yet.  Running the RPC echo node instead:

    RPC (PING/SINK/SOURCE)  127.0.0.1:$port
    log                     $data/ks-echod.log
    try                     $build/bin/ks-rpc-ping --addr 127.0.0.1:$port --count 1000 --size 1MiB

  Ctrl-C stops it.
MSG
exec "$build/bin/ks-echod" --rpc.listen="127.0.0.1:$port" \
  --log.file="$data/ks-echod.log"
