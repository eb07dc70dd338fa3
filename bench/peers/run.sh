#!/usr/bin/env bash
# kith beside its peers, from one invocation: kith's link benchmark and the
# same workloads on Prosody (XMPP, slixmpp clients) and Tox (c-toxcore
# 0.2.18 through ctypes), all inside a loopback-only network namespace,
# then one table with ratios (table.py).
#
#   bench/peers/run.sh               quiet run
#   bench/peers/run.sh --disk-busy   with a writer keeping the disk busy
#
# Installs what it needs (as root): prosody and libtoxcore2 with apt,
# slixmpp with pip in a venv (bench/peers/.venv). Not run by CI (it only
# checks that the scripts parse); figures go to stdout and bench/peers/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
busy=0
[ "${1:-}" = "--disk-busy" ] && busy=1

need=()
for pkg in prosody libtoxcore2 python3-venv util-linux iproute2; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# The packaged Prosody would listen on the default ports: stop it.
systemctl stop prosody 2>/dev/null || service prosody stop 2>/dev/null || true
venv=bench/peers/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q 'slixmpp>=1.8,<1.9'

cargo bench -p kith --bench link --no-run --offline -q
out=bench/peers/out
mkdir -p "$out"
rm -f "$out"/*.txt

if [ $busy = 1 ]; then
    scratch=$(mktemp -d /var/tmp/kith-busy.XXXXXX)
    ( while :; do dd if=/dev/zero of="$scratch/busy" bs=1M count=256 conv=fdatasync status=none; done ) &
    writer=$!
    trap 'kill $writer 2>/dev/null; rm -rf "$scratch"' EXIT
fi

# Everything below runs with loopback only: nothing can leave the machine.
unshare -n bash -euo pipefail -c "
ip link set lo up
for part in rtt throughput history; do
    KITH_BENCH=\$part cargo bench -p kith --bench link --offline -q > $out/kith-\$part.txt 2>/dev/null
done
$venv/bin/python bench/peers/xmpp_bench.py > $out/xmpp.txt
python3 bench/peers/tox_bench.py > $out/tox.txt
"
cat "$out"/kith-*.txt "$out"/xmpp.txt "$out"/tox.txt
echo
python3 bench/peers/table.py "$out"/kith-*.txt "$out"/xmpp.txt "$out"/tox.txt
