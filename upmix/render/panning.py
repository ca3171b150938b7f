"""Point-source panning gains for any direction on any speaker layout (ITU-R BS.2127 style).

The method follows the point-source panner of ITU-R BS.2127 (the EBU ADM Renderer):

1. Layers without speakers are filled: every mid-layer speaker (nominal elevation within +-10
   degrees) beyond the azimuth range of the upper (lower) layer gets a copy at the layer's elevation,
   whose gain is later mixed straight into the mid-layer speaker.
2. Virtual speakers are put at the bottom pole, and at the top pole unless the layout has T+000 or
   UH+180; their gain is spread equal-power over the ring of speakers around them (a "virtual ngon").
3. The convex hull of the nominal positions is split into triangles (VBAP on the real positions)
   and coplanar quadrilaterals (bilinear panning, the BS.2127 quad region).
4. Gains are mapped back to the real speakers and power-normalised.

Stereo (speakers M+030 and M-030 only) pans on 0+5+0 and folds down with the BS.775 matrix (centre
at -4.8 dB to keep the velocity vector), -3 dB towards the back, as BS.2127 specifies: this is the
one layout whose gains are not power-normalised everywhere.

Angles are degrees (azimuth anticlockwise from the front, elevation up); directions are Cartesian
vectors in the scene convention of `upmix.geometry`. Every function is vectorised over directions.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from ..cache import cached_arrays
from ..errors import UpmixError
from ..geometry import cartesian, normalise, orthonormal_frame
from ..layouts import Layout, Speaker

_EPS_TRIPLET = -1e-11
_EPS_QUAD = 1e-10


def _ngon_order(vertices: np.ndarray) -> np.ndarray:
    """Indices that put the corners of a convex, roughly planar polygon in cyclic order."""
    centre = vertices.mean(axis=0)
    rel = vertices - centre
    u, v, _ = orthonormal_frame(centre if np.linalg.norm(centre) > 1e-9 else np.cross(rel[0], rel[1]))
    return np.argsort(np.arctan2(rel @ v, rel @ u))


def _hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(simplices, equations) of the convex hull of `points` (qhull's), kept in the disk cache
    (`upmix.cache`): the hull takes a millisecond, but importing scipy.spatial for it takes 0.1 s
    of every run's start-up. ValueError when qhull finds no hull."""
    def compute() -> dict[str, np.ndarray]:
        import scipy.spatial

        try:
            hull = scipy.spatial.ConvexHull(points)
        except scipy.spatial.QhullError as exc:
            raise ValueError(str(exc)) from None
        return {"simplices": hull.simplices.astype(np.int64), "equations": hull.equations}

    key = b"qhull-v1:" + np.ascontiguousarray(points, dtype=np.float64).tobytes()
    found = cached_arrays("hull", key, compute, ("simplices", "equations"))
    return found["simplices"], found["equations"]


def _hull_facets(points: np.ndarray) -> list[list[int]]:
    """Convex hull facets, coplanar triangles merged (vertex index lists, in qhull order)."""
    simplices, equations = _hull(points)
    if np.any(equations[:, 3] > -1e-6):
        raise ValueError("the listener is not inside the convex hull of the speakers")
    facets: list[tuple[np.ndarray, list[int]]] = []
    for tri, eq in zip(simplices, equations):
        for feq, verts in facets:
            if np.linalg.norm(feq - eq) < 1e-5:
                verts.extend(v for v in tri if v not in verts)
                break
        else:
            facets.append((eq, [int(v) for v in tri]))
    return [verts for _, verts in facets]


def _extra_layer_speakers(main: list[Speaker]) -> tuple[list[tuple[float, float, float, float]], list[int]]:
    """Copies of mid-layer speakers that fill empty parts of the upper and lower layers.

    Returns (list of (real_az, real_el, nominal_az, nominal_el), index of the mid speaker each one
    is mixed into).
    """
    naz = np.array([s.nominal_azimuth for s in main])
    nel = np.array([s.nominal_elevation for s in main])
    rel = np.array([s.elevation for s in main])
    mid = np.flatnonzero(np.abs(nel) <= 10)
    extras, targets = [], []
    for layer_el, lo, hi in ((-30.0, -70.0, -10.0), (30.0, 10.0, 70.0)):
        in_layer = (nel >= lo) & (nel <= hi)
        if in_layer.any():
            # leave 40 degrees of room beyond the layer so sources moving sideways do not jump
            az_limit = np.max(np.abs(naz[in_layer])) + 40.0
            real_el = float(np.mean(rel[in_layer]))
        else:
            az_limit, real_el = 0.0, layer_el
        for i in mid:
            if abs(naz[i]) >= az_limit - 1e-5:
                extras.append((main[i].azimuth, real_el, float(naz[i]), layer_el))
                targets.append(int(i))
    return extras, targets


class PointSourcePanner:
    """Point-source panning gains for the non-LFE speakers of a layout.

    Args:
        layout: the speaker layout; gains come out in the order of ``layout.main_indices``.
    """

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        main = layout.main_speakers
        self.num_speakers = len(main)
        names = {s.name for s in main}
        self._stereo = names == {"M+030", "M-030"}
        if self._stereo:
            self._left = [s.name for s in main].index("M+030")
            self._inner = _panner_0_5_0()
        elif self.num_speakers > 1:
            try:
                self._configure(main)
            except ValueError:
                raise UpmixError(
                    f"speaker layout {layout.name!r} does not surround the listener, so some "
                    "directions cannot be panned; add side/rear speakers or use a 2-speaker "
                    "stereo layout", layout.source or None) from None

    def _configure(self, main: list[Speaker]) -> None:
        extras, extra_targets = _extra_layer_speakers(main)
        top = not any(s.name in ("T+000", "UH+180") for s in main)
        virtual = [[0.0, 0.0, -1.0]] + ([[0.0, 0.0, 1.0]] if top else [])
        n_main, n_extra = len(main), len(extras)
        real = np.concatenate([
            cartesian([s.azimuth for s in main], [s.elevation for s in main]).reshape(-1, 3),
            cartesian([e[0] for e in extras], [e[1] for e in extras]).reshape(-1, 3),
            virtual])
        nominal = np.concatenate([
            cartesian([s.nominal_azimuth for s in main], [s.nominal_elevation for s in main]).reshape(-1, 3),
            cartesian([e[2] for e in extras], [e[3] for e in extras]).reshape(-1, 3),
            virtual])
        n_ext = len(real)
        virtual_verts = range(n_main + n_extra, n_ext)

        # downmix from the extended speaker set (real + extra + virtual) to the real speakers
        down = np.zeros((n_ext, n_main))
        down[np.arange(n_main), np.arange(n_main)] = 1.0
        down[n_main + np.arange(n_extra), extra_targets] = 1.0

        facets = _hull_facets(nominal)
        triplets: list[list[int]] = []
        quads: list[list[int]] = []
        for v in virtual_verts:
            ring = sorted({u for f in facets if v in f for u in f} - {v})
            if set(ring) & set(virtual_verts):
                raise ValueError("virtual speakers are adjacent")
            ring = [ring[k] for k in _ngon_order(real[ring])]
            down[v] = down[ring].sum(axis=0) / np.sqrt(len(ring))
            triplets += [[ring[k], ring[(k + 1) % len(ring)], v] for k in range(len(ring))]
        for f in facets:
            if set(f) & set(virtual_verts):
                continue
            if len(f) == 3:
                triplets.append(f)
            elif len(f) == 4:
                quads.append([f[k] for k in _ngon_order(real[f])])
            else:
                raise ValueError("a facet with more than four corners")

        self._down = down
        self._tri_channels = np.array(triplets, dtype=int)
        # every triplet's inverse basis side by side, so one matrix product gives all triplet gains
        self._tri_matrix = np.linalg.inv(real[self._tri_channels]).transpose(1, 0, 2).reshape(3, -1)
        self._quad_channels = np.array(quads, dtype=int).reshape(-1, 4)
        qpos = real[self._quad_channels]
        self._quad_positions = qpos
        self._quad_poly_x = np.array([_quad_axis_poly(q) for q in qpos]).reshape(-1, 3, 3)
        self._quad_poly_y = np.array([_quad_axis_poly(q[[1, 2, 3, 0]]) for q in qpos]).reshape(-1, 3, 3)

    def gains(self, directions: ArrayLike) -> np.ndarray:
        """Gains for source directions.

        Args:
            directions: Cartesian direction vectors, shape (..., 3); need not be normalised.

        Returns:
            Non-negative gains, shape (..., num_speakers), sum of squares 1 (0+2+0: 1 at the front
            to 0.5 at the back).
        """
        d = np.asarray(directions, dtype=float)
        flat = normalise(d.reshape(-1, 3))
        if self._stereo:
            out = self._stereo_gains(flat)
        elif self.num_speakers == 1:
            out = np.ones((len(flat), 1))
        else:
            out = self._full_gains(flat)
        return out.reshape(d.shape[:-1] + (self.num_speakers,))

    def gains_polar(self, azimuth: ArrayLike, elevation: ArrayLike) -> np.ndarray:
        """Gains for directions given in degrees (broadcast shapes, then a speaker axis)."""
        return self.gains(cartesian(azimuth, elevation))

    def _stereo_gains(self, d: np.ndarray) -> np.ndarray:
        g5 = self._inner.gains(d)  # M+030, M-030, M+000, M+110, M-110
        c, s = np.sqrt(1.0 / 3.0), np.sqrt(0.5)
        dmx = np.array([[1.0, 0.0, c, s, 0.0], [0.0, 1.0, c, 0.0, s]])
        g = g5 @ dmx.T
        g /= np.linalg.norm(g, axis=-1, keepdims=True)
        front = g5[:, :3].max(axis=1)
        back = g5[:, 3:].max(axis=1)
        g *= (0.5 ** (0.5 * back / (front + back)))[:, None]
        return g if self._left == 0 else g[:, ::-1]

    def _full_gains(self, d: np.ndarray) -> np.ndarray:
        n, n_ext = len(d), len(self._down)
        # VBAP triplets: gains in each triangle's basis, valid where all are non-negative
        tri = (d @ self._tri_matrix).reshape(n, -1, 3)
        valid = np.all(tri >= _EPS_TRIPLET, axis=-1)
        quad, qvalid = self._quad_gains(d)
        valid = np.concatenate([valid, qvalid], axis=1)
        region = np.argmax(valid, axis=1)
        # a direction that rounding puts outside every region takes the triangle it is least outside
        lost = ~valid.any(axis=1)
        region[lost] = np.argmax(tri[lost].min(axis=-1), axis=1)
        ext = np.zeros((n, n_ext))
        rows = np.arange(n)
        n_tri = len(self._tri_channels)
        is_tri = region < n_tri
        if is_tri.any():
            r = region[is_tri]
            g = np.clip(tri[rows[is_tri], r], 0.0, None)
            g /= np.linalg.norm(g, axis=-1, keepdims=True)
            np.add.at(ext, (rows[is_tri][:, None], self._tri_channels[r]), g)
        if (~is_tri).any():
            r = region[~is_tri] - n_tri
            g = quad[rows[~is_tri], r]
            g /= np.linalg.norm(g, axis=-1, keepdims=True)
            np.add.at(ext, (rows[~is_tri][:, None], self._quad_channels[r]), g)
        out = ext @ self._down
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    def _quad_gains(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear quad-region gains (n, Q, 4) and validity (n, Q)."""
        if len(self._quad_channels) == 0:
            return np.zeros((len(d), 0, 4)), np.zeros((len(d), 0), dtype=bool)
        n, q = len(d), len(self._quad_channels)
        x, okx = _solve_axis((d @ self._quad_poly_x.reshape(-1, 3).T).reshape(n, q, 3))
        y, oky = _solve_axis((d @ self._quad_poly_y.reshape(-1, 3).T).reshape(n, q, 3))
        g = np.stack([(1 - x) * (1 - y), x * (1 - y), x * y, (1 - x) * y], axis=-1)
        facing = np.sum(g * (d @ self._quad_positions.reshape(-1, 3).T).reshape(n, q, 4), axis=-1) > 0
        return g, okx & oky & facing

    def spread_gains(self, directions: ArrayLike, width: float | ArrayLike) -> np.ndarray:
        """Gains for sources spread over a circular cap of angular diameter `width` degrees.

        The cap is sampled on rings around each direction and the panning gains of all samples are
        power-summed with solid-angle weights, so the result stays power-normalised and varies
        smoothly with both direction and width. ``width`` 0 gives point-source gains; 360 covers the
        whole sphere.
        """
        d = np.asarray(directions, dtype=float).reshape(-1, 3)
        w = np.broadcast_to(np.asarray(width, dtype=float), (len(d),))
        out = np.empty((len(d), self.num_speakers))
        point = w <= 0
        if point.any():
            out[point] = self.gains(d[point])
        for rows, samples, weights in cap_groups(d, w):
            g2 = self.gains(samples) ** 2  # (rows, samples, speakers)
            out[rows] = np.sqrt(np.einsum("m,nms->ns", weights, g2) / weights.sum())
        return out.reshape(np.shape(directions)[:-1] + (self.num_speakers,))


def _quad_axis_poly(q: np.ndarray) -> np.ndarray:
    """Rows of the quadratic (in x) whose dot product with a direction is zero on the quad's x-isoline."""
    a, b, c, d = q
    return np.array([np.cross(b - a, c - d), np.cross(a, c - d) + np.cross(b - a, d), np.cross(a, d)])


def _solve_axis(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The root in [0, 1] of a x^2 + b x + c (last axis a, b, c) and whether there is one."""
    a, b, c = coef[..., 0], coef[..., 1], coef[..., 2]
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), np.abs(c))
    scale = np.where(scale > 0, scale, 1.0)
    a, b, c = a / scale, b / scale, c / scale
    linear = np.abs(a) < 1e-12
    disc = b * b - 4 * a * c
    real = linear | (disc >= -_EPS_QUAD)
    sq = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # numerically stable roots: q = -(b + sign(b) sqrt(disc)) / 2; roots q/a and c/q
        qq = -0.5 * (b + np.where(b >= 0, sq, -sq))
        r1 = np.where(linear, -c / b, qq / a)
        r2 = np.where(linear, np.nan, c / qq)
    in1 = real & (r1 > -_EPS_QUAD) & (r1 < 1 + _EPS_QUAD)
    in2 = real & (r2 > -_EPS_QUAD) & (r2 < 1 + _EPS_QUAD)
    root = np.where(in1, r1, r2)
    return np.clip(np.nan_to_num(root), 0.0, 1.0), in1 | in2


@lru_cache(maxsize=64)
def _cap_pattern(width: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample points (in a frame whose +z is the cap centre) and solid-angle weights for a cap of
    angular diameter `width` degrees: the centre plus rings 2.5 degrees apart (at most 16 rings, so
    wide caps are sampled every half/16 degrees: a few hundred points for the whole sphere)."""
    half = np.radians(width / 2.0)
    n_rings = min(16, max(2, int(np.ceil(np.degrees(half) / 2.5))))
    step = half / n_rings
    pts, wts = [np.array([[0.0, 0.0, 1.0]])], [np.array([2 * np.pi * (1 - np.cos(step / 2))])]
    for k in range(1, n_rings + 1):
        th = k * step
        n_phi = max(6, int(np.ceil(2 * np.pi * np.sin(th) / max(step, np.radians(2.5)))))
        phi = (np.arange(n_phi) + 0.5 * (k % 2)) * 2 * np.pi / n_phi
        pts.append(np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi),
                             np.full(n_phi, np.cos(th))], axis=-1))
        area = 2 * np.pi * (np.cos(th - step / 2) - np.cos(min(th + step / 2, half)))
        wts.append(np.full(n_phi, area / n_phi))
    return np.concatenate(pts), np.concatenate(wts)


def cap_groups(directions: np.ndarray, widths: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cap samples for every spread source, batched by width.

    Args:
        directions: cap centres, shape (n, 3).
        widths: angular diameters in degrees, shape (n,); sources with width <= 0 are skipped and
            widths above 360 count as 360.

    Yields:
        (rows, samples, weights): indices into `directions` that share one width, their sample
        directions (len(rows), M, 3) and the M solid-angle weights.
    """
    w = np.round(np.minimum(widths, 360.0), 3)
    for width in np.unique(w[w > 0]):
        rows = np.flatnonzero(w == width)
        pts, wts = _cap_pattern(float(width))
        yield rows, np.einsum("mk,nkj->nmj", pts, orthonormal_frame(directions[rows])), wts


@lru_cache(maxsize=1)
def _panner_0_5_0() -> PointSourcePanner:
    from ..layouts import get_layout
    return PointSourcePanner(get_layout("0+5+0"))


@lru_cache(maxsize=32)
def panner_for(layout: Layout) -> PointSourcePanner:
    """A cached panner per layout (configuring one triangulates the layout)."""
    return PointSourcePanner(layout)
