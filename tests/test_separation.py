"""Source separation: every backend's stems add up, the orchestra model streams without seams at
any rate, the Demucs adapter stays offline (the held-out score of the shipped model, which needs the
training data pipeline, is in tests/training/)."""

import json

import numpy as np
import pytest
import soundfile
import torch

from conftest import ROOT, run_cli
from upmix.analysis import sdr
from upmix.errors import UpmixError
from upmix.io import read, write
from upmix.layouts import get_layout
from upmix.separation import SEPARATORS, get_separator
from upmix.separation.chunked import CHUNK_S, OVERLAP_S
from upmix.separation.model import consistent
from upmix.separation.orchestra import OrchestraSeparator, default_weights, load_model
from upmix.stage import Stage, StageOptions

EXAMPLE = ROOT / "examples/string_quartet/quartet_stereo.flac"


def music(seconds, rate, channels=2, seed=0):
    """Sustained harmonic tones with vibrato and a little noise (a steady texture where a seam would
    stand out)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros((channels, len(t)))
    for f0, pan in ((196.0, 0.2), (330.0, 0.8), (523.0, 0.5)):
        phase = 2 * np.pi * f0 * t + 0.3 * np.sin(2 * np.pi * 5 * t)
        tone = sum(np.sin(k * phase) / k for k in range(1, 8))
        x += np.array([[np.cos(pan * np.pi / 2)], [np.sin(pan * np.pi / 2)]])[:channels] * tone
    x += 0.01 * rng.standard_normal(x.shape)
    return (0.1 * x / np.abs(x).max() * 5).astype(np.float32)


@pytest.fixture(scope="module")
def htdemucs():
    """A small randomly initialised HTDemucs (no weights are downloaded in tests)."""
    pytest.importorskip("demucs")
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    return HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=16, depth=2, t_layers=1, nfft=512,
                    segment=2, dconv_depth=1, dconv_comp=4, t_heads=2)


# -- the protocol ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SEPARATORS)
def test_every_backend_adds_up_to_its_input(name, htdemucs):
    x = music(10.0, 44100)
    if name == "demucs":
        from upmix.separation.demucs import DemucsSeparator

        sep = DemucsSeparator(htdemucs, device="cpu")
    else:
        sep = get_separator(name, device="cpu")
    if name == "mono":
        x = x[:1]
    stems = sep.separate(x, 44100)
    assert set(stems) == {s.name for s in sep.specs()}
    assert all(s.shape[-1] == x.shape[-1] for s in stems.values())
    reference = np.repeat(x, 2, axis=0) if name == "mono" else x
    assert sdr(sep.mix(stems), reference) >= 60


def test_consistency_shares_out_what_the_masks_miss():
    torch.manual_seed(0)
    mix = torch.complex(torch.randn(2, 3, 5), torch.randn(2, 3, 5))
    stems = torch.complex(torch.randn(2, 4, 3, 5), torch.randn(2, 4, 3, 5)) * 0.3
    out = consistent(stems, mix)
    assert torch.allclose(out.sum(dim=1), mix, atol=1e-6)
    silent = consistent(torch.zeros(1, 4, 3, 5, dtype=torch.complex64), mix[:1])
    assert torch.allclose(silent, mix[:1, None].expand(1, 4, 3, 5) / 4)


# -- the orchestra model ----------------------------------------------------------------------------

def test_shipped_model_is_compact_and_loads_once():
    path = default_weights()
    assert path.is_file() and path.stat().st_size < 16 * 2 ** 20
    model = load_model(str(path), "cpu")
    assert sum(p.numel() for p in model.parameters()) <= 10_000_000
    assert model.config.targets == ("strings", "woodwinds", "brass", "other")
    assert OrchestraSeparator(device="cpu").model is OrchestraSeparator(device="cpu").model


def test_mask_temperature_flattens_the_masks():
    from dataclasses import asdict, replace

    from upmix.separation.model import BandSplitRNN, ModelConfig

    config = ModelConfig(features=8, hidden=8, layers=1, mask_hidden=8)
    torch.manual_seed(0)
    model = BandSplitRNN(config).eval()
    spec = torch.randn(1, 2, config.bins, 20, dtype=torch.complex64)
    masks = {}
    for t in (1.0, 1.5, 1e6):
        model.config = replace(config, temperature=t)
        with torch.no_grad():
            masks[t] = (model(spec) / spec[:, None]).real
    spread = {t: float((m - 0.25).abs().mean()) for t, m in masks.items()}
    assert spread[1e6] < 1e-5 < spread[1.5] < spread[1.0]  # toward an even split as it rises
    for m in masks.values():
        torch.testing.assert_close(m.sum(dim=1), torch.ones_like(m[:, 0]))  # the stems still add up
    old = json.dumps({k: v for k, v in asdict(config).items() if k != "temperature"})  # weights before it
    assert ModelConfig.from_json(old).temperature == 1.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature must be a positive number"):
            replace(config, temperature=bad)


@pytest.mark.parametrize("rate,channels", [(44100, 2), (48000, 1), (16000, 2), (8000, 1)])
def test_any_rate_mono_or_stereo(rate, channels):
    x = music(3.0, rate, channels)
    sep = OrchestraSeparator(device="cpu")
    stems = sep.separate(x, rate)
    assert list(stems) == ["strings", "woodwinds", "brass", "other"]
    assert all(s.shape == x.shape for s in stems.values())
    assert sdr(sep.mix(stems), x) >= 60


def spectral_flux(x, n_fft=2048, hop=512):
    spec = np.abs(np.stack([np.abs(np.fft.rfft(x[..., i:i + n_fft] * np.hanning(n_fft), axis=-1))
                            for i in range(0, x.shape[-1] - n_fft, hop)], axis=-1))
    return np.maximum(np.diff(spec, axis=-1), 0).sum(axis=tuple(range(spec.ndim - 1))), hop


def seam_ratio(stem: np.ndarray, edges: np.ndarray) -> float:
    """A stem's largest spectral flux within 2048 samples of the chunk edges over its largest
    elsewhere (past the first frames): above 1 where a seam shows."""
    flux, hop = spectral_flux(stem)
    centre = (np.arange(len(flux)) + 1) * hop + 1024  # sample at the middle of each frame pair
    near = np.min(np.abs(centre[:, None] - edges[None]), axis=1) < 2048
    assert near.any()
    return float(flux[near].max() / flux[~near & (centre > 4096)].max())


def test_no_seams_at_chunk_boundaries():
    """A 40 s texture separated in chunks: each stem's spectral flux around the chunk boundaries is
    no larger than elsewhere."""
    rate = 22050
    x = music(40.0, rate)
    stems = OrchestraSeparator(device="cpu").separate(x, rate)
    step = (CHUNK_S - OVERLAP_S) * rate
    edges = np.concatenate([[k * step, k * step + OVERLAP_S * rate] for k in range(1, int(40 / 7) + 1)])
    for name, stem in stems.items():
        if np.sqrt((stem ** 2).mean()) >= 1e-3 * np.sqrt((x ** 2).mean()):
            assert seam_ratio(stem, edges) <= 1.0, name


def test_a_hard_switch_would_show(monkeypatch):
    """The seam check can fail: without the crossfade (chunks cut end to end) it does."""
    import upmix.separation.chunked as chunked

    rate = 22050
    x = music(20.0, rate)
    monkeypatch.setattr(chunked, "OVERLAP_S", 1.0 / rate)  # a one-sample overlap: no crossfade
    cut = OrchestraSeparator(device="cpu").separate(x, rate)
    edges = np.array([round((CHUNK_S - 1.0 / rate) * rate * k) for k in (1, 2)])
    assert max(seam_ratio(stem, edges) for stem in cut.values()) > 1.0


def test_separate_command_on_the_example(tmp_path):
    out = tmp_path / "stems"
    proc = run_cli("separate", EXAMPLE, "-o", out, "--device", "cpu", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "separation.json").read_text())
    assert [s["name"] for s in report["stems"]] == ["strings", "woodwinds", "brass", "other"]
    assert report["mix_snr_db"] >= 60
    x, rate = read(EXAMPLE)
    total = sum(read(out / f"{s}.wav")[0].astype(float) for s in ("strings", "woodwinds", "brass", "other"))
    assert sdr(total, x) >= 60  # 24-bit files: the quantisation is ~140 dB down
    assert report["input"]["sample_rate"] == rate == soundfile.info(out / "strings.wav").samplerate


def test_separate_errors(tmp_path, rng):
    six = tmp_path / "six.wav"
    write(six, rng.standard_normal((6, 4800)) * 0.1, 48000, "FLOAT")
    proc = run_cli("separate", six, "-o", tmp_path / "s")
    assert proc.returncode == 2 and "mono or stereo" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists()
    proc = run_cli("separate", EXAMPLE, "-o", tmp_path / "s", "--weights", tmp_path / "none.safetensors")
    assert proc.returncode == 2 and "weights are not installed" in proc.stderr
    proc = run_cli("separate", EXAMPLE, "-o", tmp_path / "s", "--model", "magic")
    assert proc.returncode == 2 and "unknown separator 'magic'" in proc.stderr
    assert not (tmp_path / "s").exists()


def test_run_seats_the_families_on_the_orchestra(tmp_path):
    out = tmp_path / "o.wav"
    proc = run_cli("run", EXAMPLE, "--separator", "orchestra", "-f", "5.1", "-o", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["separator"] == "orchestra"
    assert report["settings"]["scene"].endswith("orchestra.yaml")
    assert [s["name"] for s in report["stems"]] == ["strings", "woodwinds", "brass", "other"]


def test_families_sit_where_their_sections_are():
    from upmix.scene import load_scene
    from upmix.seating import seat_families

    scene = load_scene(ROOT / "layouts/scenes/orchestra.yaml")
    specs = OrchestraSeparator(device="cpu").specs()
    seated = seat_families(scene, specs)
    by_name = {o.name: o for o in seated.objects}
    strings = [o.position for o in scene.objects if o.family == "strings"]
    np.testing.assert_allclose(by_name["strings"].position, np.mean(strings, axis=0))
    assert by_name["brass"].position[1] > by_name["strings"].position[1]  # behind the strings
    assert 10 < by_name["strings"].width <= 120


# -- Demucs -------------------------------------------------------------------------------------------

def test_demucs_never_downloads(tmp_path):
    pytest.importorskip("demucs")
    with pytest.raises(UpmixError, match="not available offline"):
        get_separator("demucs", weights=tmp_path, device="cpu")
    with pytest.raises(UpmixError, match="no Demucs weights"):
        get_separator("demucs:htdemucs", weights=tmp_path / "missing", device="cpu")


def test_demucs_chunks_rates_and_devices(htdemucs):
    from upmix.separation.demucs import DemucsSeparator

    sep = DemucsSeparator(htdemucs, device="cpu")
    assert sep.stem_names == ["drums", "bass", "other", "vocals"]
    x = music(CHUNK_S * 2 + 1.5, 48000, channels=1)  # three chunks, mono, a rate the model does not use
    stems = sep.separate(x, 48000)
    assert all(s.shape == x.shape for s in stems.values())
    assert sdr(sep.mix(stems), x) >= 60
    if torch.cuda.is_available():
        gpu = DemucsSeparator(htdemucs, device="cuda").separate(x, 48000)
        for k in stems:
            np.testing.assert_allclose(gpu[k], stems[k], atol=1e-3)


def test_stage_separators_fold_back():
    sep = get_separator("spatial", stage=Stage(get_layout("5.1"), StageOptions()), device="cpu")
    x = music(4.0, 48000)
    assert sdr(sep.mix(sep.separate(x, 48000)), x) >= 60
