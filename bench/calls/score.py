"""Helpers for pesq.sh: resample espeak-ng's speech to 48 kHz mono 16-bit,
and score each degraded WAV against the reference with wideband PESQ."""
import sys
from math import gcd

import numpy as np
from pesq import pesq
from scipy.io import wavfile
from scipy.signal import resample_poly


def resample(src, dst):
    rate, x = wavfile.read(src)
    if x.ndim > 1:
        x = x.mean(axis=1)
    g = gcd(rate, 48000)
    y = resample_poly(x.astype(np.float64), 48000 // g, rate // g)
    wavfile.write(dst, 48000, np.clip(y, -32768, 32767).astype(np.int16))


def to16k(x):
    return resample_poly(x.astype(np.float64), 1, 3)


def score(work):
    _, ref = wavfile.read(f"{work}/reference.wav")
    ref16 = to16k(ref)
    print("PESQ wideband (P.862.2), espeak-ng speech, kith's Opus settings per loss:")
    for loss in (0, 5, 10, 20):
        row = []
        for fec in ("on", "off"):
            _, deg = wavfile.read(f"{work}/loss{loss}_fec{fec}.wav")
            deg16 = to16k(deg)
            n = min(len(ref16), len(deg16))
            row.append(pesq(16000, ref16[:n], deg16[:n], "wb"))
        print(f"voice PESQ-WB, {loss}% loss: FEC on {row[0]:.2f}, FEC off {row[1]:.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "resample":
        resample(sys.argv[2], sys.argv[3])
    else:
        score(sys.argv[2])
