#!/bin/bash
# Time from spawn to /readyz 200 of the release binary, cold cache vs warm.
BIN=${1:-target/release/switchboard}
D=$(mktemp -d)
cat > $D/sb.toml <<EOT
listen = "127.0.0.1:18931"
store = "embedded:$D/data"
EOT
measure() {
  local start=$(date +%s%N)
  $BIN serve --config $D/sb.toml >/dev/null 2>&1 &
  local pid=$!
  until curl -sf http://127.0.0.1:18931/readyz >/dev/null; do sleep 0.005; done
  local end=$(date +%s%N)
  local rss=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
  kill $pid; wait $pid 2>/dev/null
  echo "$1: $(( (end-start)/1000000 )) ms to /readyz, RSS ${rss} KiB"
}
measure "cold (compiles 6 plugins)"
for i in 1 2 3; do measure "warm $i (precompiled)"; done
rm -rf $D/data/compiled
measure "cold again"
measure "warm again"
rm -rf $D
