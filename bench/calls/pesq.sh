#!/bin/sh
# Speech quality of kith's voice path under loss, scored with PESQ
# (ITU-T P.862.2 wideband, the `pesq` package from PyPI in a venv).
# Speech is made with espeak-ng, resampled to 48 kHz, sent through the
# same Opus coding and loss recovery a call uses (`cargo bench -p
# kith-media --bench quality`: 0, 5, 10, 20 % seeded loss, FEC on and
# off), and each output is scored against the input at 16 kHz.
# Not run by CI (it installs from the network). Run from anywhere:
#   sh bench/calls/pesq.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${KITH_QUALITY_OUT:-/tmp/kith-quality}
venv=${KITH_PESQ_VENV:-/tmp/kith-pesq-venv}
mkdir -p "$work"
if ! command -v espeak-ng >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy scipy pesq
fi
espeak-ng -s 150 -w "$work/speech.wav" \
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
Rice is often served in round bowls. The juice of lemons makes fine punch."
"$venv/bin/python" "$root/bench/calls/score.py" resample "$work/speech.wav" "$work/speech48k.wav"
(cd "$root" && KITH_SPEECH="$work/speech48k.wav" KITH_QUALITY_OUT="$work" \
    cargo bench -q -p kith-media --bench quality)
"$venv/bin/python" "$root/bench/calls/score.py" score "$work"
