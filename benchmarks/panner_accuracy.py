"""Point-source panner against the EBU ADM Renderer's golden gains (ITU-R BS.2127).

For each layout in tests/data/ear_point_source: the largest |gain difference| over the whole
5-degree grid and on the horizontal plane, and the worst power sum, next to the test limits
(0.02 and 1e-6).

    python benchmarks/panner_accuracy.py
"""

from pathlib import Path

import numpy as np

from upmix.layouts import get_layout
from upmix.render.panning import PointSourcePanner

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "data" / "ear_point_source"


def main() -> None:
    print(f"| {'layout':8} | {'max |diff| grid':>15} | {'max |diff| horizontal':>21} | {'power sum range':>17} |")
    print(f"|{'-' * 10}|{'-' * 17}|{'-' * 23}|{'-' * 19}|")
    for path in sorted(GOLDEN.glob("*.npz")):
        ref = np.load(path)
        layout = get_layout(path.stem)
        az, el = np.meshgrid(ref["azimuth"], ref["elevation"])
        gains = PointSourcePanner(layout).gains_polar(az, el)
        names = [s.name for s in layout.main_speakers]
        gains = gains[..., [names.index(str(c)) for c in ref["channels"]]]
        diff = np.abs(gains - ref["gains"])
        row = int(np.flatnonzero(ref["elevation"] == 0)[0])
        power = np.sum(gains ** 2, axis=-1)
        print(f"| {path.stem:8} | {diff.max():15.2e} | {diff[row].max():21.2e} | "
              f"{power.min():7.4f}..{power.max():7.4f} |")


if __name__ == "__main__":
    main()
