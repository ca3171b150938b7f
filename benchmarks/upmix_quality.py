"""Upmix quality protocol: placement, energy and downmix compatibility of `upmix run`.

Test signal (48 kHz stereo): 7 s white-noise bursts panned with the constant-power sin/cos law at
p = -1, -0.3, 0, +0.6, +1, then 7 s of decorrelated noise, 7 s of anti-phase noise, then 11 s of
five simultaneous tones (300, 700, 1100, 1900, 3100 Hz) at those five pans
(`upmix.analysis.protocol_signal`). Each burst and tone is measured on the 5.1 and 7.1.4 outputs:
energy-vector azimuth over the non-LFE speakers against the expected azimuth (the stereo
energy-vector azimuth on a +-30 degree pair, scaled by width / 30), output/input energy, ITU
fold-down SNR against the input after latency alignment, and the share of energy on side, back and
height speakers. Peer: ffmpeg's `surround` filter on the same file, when ffmpeg is installed.

    python benchmarks/upmix_quality.py [--burst 7] [--tones 11]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from upmix.analysis import SegmentResult, fold_down, measure, protocol_signal
from upmix.io import read, write
from upmix.layouts import Layout, Speaker, get_layout

RATE = 48000

# ffmpeg's channel orders for its surround filter's outputs, as speakers at BS.2051 angles
FFMPEG_LAYOUTS = {
    "5.1": Layout("ffmpeg 5.1", tuple(
        Speaker(n, a, 0.0, a, 0.0, is_lfe=n == "LFE") for n, a in
        [("FL", 30), ("FR", -30), ("FC", 0), ("LFE", 0), ("BL", 110), ("BR", -110)])),
    "7.1": Layout("ffmpeg 7.1", tuple(
        Speaker(n, a, 0.0, a, 0.0, is_lfe=n == "LFE") for n, a in
        [("FL", 30), ("FR", -30), ("FC", 0), ("LFE", 0), ("BL", 135), ("BR", -135), ("SL", 90), ("SR", -90)])),
}


def align(output: np.ndarray, layout: Layout, reference: np.ndarray, max_lag: int = 16384) -> np.ndarray:
    """Shift `output` by the lag that best aligns its fold-down with the reference."""
    fd = fold_down(output, layout).sum(axis=0)
    ref = reference.sum(axis=0)
    n = 1 << int(np.ceil(np.log2(len(ref) + max_lag)))
    xc = np.fft.irfft(np.fft.rfft(fd, n) * np.conj(np.fft.rfft(ref, n)), n)
    lags = np.concatenate([xc[:max_lag], xc[-max_lag:]])
    lag = int(np.argmax(np.abs(lags)))
    lag = lag if lag < max_lag else lag - 2 * max_lag
    if lag >= 0:
        return np.pad(output[:, lag:], ((0, 0), (0, lag)))
    return np.pad(output, ((0, 0), (-lag, 0)))[:, :output.shape[1]]


def run_upmix(src: Path, out: Path, fmt: str, *extra: str) -> np.ndarray:
    subprocess.run([sys.executable, "-m", "upmix", "run", str(src), "-o", str(out), "-f", fmt, "--bits", "float",
                    "-q", "-y", *extra], check=True)  # -y: each run replaces the previous one's file
    return read(out)[0]


def table(title: str, results: list[SegmentResult]) -> None:
    print(f"\n{title}")
    print(f"| {'segment':26} | {'azimuth':>8} | {'expected':>8} | {'error':>6} | {'energy dB':>9} "
          f"| {'fold-down SNR dB':>16} | {'side/back/height':>16} |")
    print(f"|{'-' * 28}|{'-' * 10}|{'-' * 10}|{'-' * 8}|{'-' * 11}|{'-' * 18}|{'-' * 18}|")
    for r in results:
        exp = "" if r.expected is None else f"{r.expected:8.2f}"
        err = "" if r.expected is None else f"{r.azimuth - r.expected:6.2f}"
        print(f"| {r.segment.label:26} | {r.azimuth:8.2f} | {exp:>8} | {err:>6} | {r.energy_db:9.2f} "
              f"| {r.fold_down_snr_db:16.1f} | {r.surround_share:16.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burst", type=float, default=7.0, help="seconds per noise burst")
    ap.add_argument("--tones", type=float, default=11.0, help="seconds of the tone segment")
    args = ap.parse_args()
    signal, segments = protocol_signal(RATE, args.burst, args.tones)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "protocol.wav"
        write(src, signal, RATE, "FLOAT")
        for fmt in ("5.1", "7.1.4"):
            layout = get_layout(fmt)
            for label, width, extra in (("default (width 30)", 30.0, ()), ("--width 45", 45.0, ("--width", "45")),
                                        ("--exact-downmix", 30.0, ("--exact-downmix",))):
                out = run_upmix(src, Path(tmp) / "out.wav", fmt, *extra)
                table(f"upmix run -f {fmt} {label}", measure(out, signal, layout, segments, RATE, width))
        if shutil.which("ffmpeg"):
            for chl in ("5.1", "7.1"):
                out = Path(tmp) / f"ffmpeg_{chl}.wav"
                subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af", f"surround=chl_out={chl}",
                                "-c:a", "pcm_f32le", str(out)], check=True)
                y = read(out)[0]
                layout = FFMPEG_LAYOUTS[chl]
                table(f"peer: ffmpeg surround=chl_out={chl}",
                      measure(align(y, layout, signal), signal, layout, segments, RATE))


if __name__ == "__main__":
    main()
