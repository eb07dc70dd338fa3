#!/usr/bin/env bash
# Runs fuzz targets one after another on stable Rust (no sanitizer) and
# prints a table row per target: executions, exec/s, crashes.
#   ./run.sh                     every target, 10 million executions each
#   RUNS=100000 ./run.sh event   one target, a short run
# Needs `cargo install cargo-fuzz` and a C++ compiler (libFuzzer is built
# from source by libfuzzer-sys). Logs go to fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-10000000}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(sync_msg event deposit_payload card room_link name_record join_msg
        invite account_entry room_content file_offer file_msg media_packet call_msg call_record handle mailbox_auth deposit
        pushd_request mailboxd_request named_request video_frames contact_request request_answer xmpp_stanza
        request_messages lan_beacon relay_url dht_record conf_msg conf_frame)
fi
mkdir -p logs
cargo fuzz build -s none --release
for t in "${TARGETS[@]}"; do
    crashes=0
    cargo fuzz run -s none --release "$t" -- -runs="$RUNS" -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || crashes=1
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    echo "| $t | ${execs:-?} | ${rate:-?} | $crashes |"
done
