"""H1 analyzer: exact checks on a stub detector with known NLLs, the claims on hand-made
intervals, the flip control on two hand-made models, and an end-to-end run on the tiny
checkpoints."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from mechanism.analyzers.h1_edge import H1Config, H1Result, evidence, patch_gradient, run
from mechanism.data.images import load_image
from mechanism.errors import MechanismError
from mechanism.eval.detector import load_detector
from mechanism.io.serialize import from_plain, to_plain
from mechanism.report import tables
from mechanism.stats.bootstrap import Interval
from mechanism.stats.edge_distance import KS_METHOD
from mechanism.stats.evidence import Status, Verdict

SIZE, GRID, N_IMAGES = 32, 4, 10


def reference_gradient(image, h, w):
    """Grey by cv2.cvtColor, Sobel by scipy.ndimage (mirror = reflect-101), block means by loops."""
    grey = cv2.cvtColor(np.ascontiguousarray(image.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)
    mag = np.hypot(ndimage.sobel(grey, axis=1, mode="mirror"), ndimage.sobel(grey, axis=0, mode="mirror"))
    ph, pw = grey.shape[0] // h, grey.shape[1] // w
    return np.array([[mag[i * ph:(i + 1) * ph, j * pw:(j + 1) * pw].mean() for j in range(w)]
                     for i in range(h)])


def test_patch_gradient_matches_reference_and_ramp():
    image = np.random.default_rng(0).random((3, 24, 24), dtype=np.float32)
    np.testing.assert_allclose(patch_gradient(image, 3, 3), reference_gradient(image, 3, 3), rtol=1e-5)
    ramp = np.broadcast_to(0.01 * np.arange(24, dtype=np.float32), (3, 24, 24)).copy()
    g = patch_gradient(ramp, 4, 4)         # 6×6-pixel patches; Sobel of slope a is 8a inside
    np.testing.assert_allclose(g[:, 1:3], 0.08, rtol=1e-5)
    with pytest.raises(MechanismError):
        patch_gradient(image, 5, 5)


# --- claims -----------------------------------------------------------------------------------

def interval(est, low, high):
    return Interval(est, low, high, 0.95, 100, 100)


def test_claims_on_hand_made_intervals():
    # location holds (interval below the uniform 4.179, KS significant); interior ratio 1.01
    # with an interval below 1.10 fails → PARTIAL
    ev = evidence(interval(1.979, 1.8, 2.1), 4.179, 5.43e-93, interval(1.01, 0.98, 1.05), 1e-3,
                  interval(1.2, 1.1, 1.3), 100)
    assert [c.status for c in ev.claims] == [Status.HOLDS, Status.FAILS]
    assert ev.verdict is Verdict.PARTIAL
    assert "all cells 1.200" in ev.claim("H1.content").note      # printed beside, not used
    # interval touching the uniform mean: not resolved → INCONCLUSIVE
    ev = evidence(interval(4.0, 3.8, 4.179), 4.179, 1e-9, interval(1.5, 1.2, 1.8), 1e-9, None, 100)
    assert ev.claim("H1.location").status is Status.NOT_RESOLVED
    assert ev.verdict is Verdict.INCONCLUSIVE and "H1.location needs" in ev.reason
    # a non-significant KS holds the location claim back; the MW test does the same for content
    ev = evidence(interval(1.9, 1.8, 2.0), 4.179, 0.2, interval(1.5, 1.2, 1.8), 0.3, None, 100)
    assert all(c.status is Status.NOT_RESOLVED for c in ev.claims)
    # undefined interior ratio
    ev = evidence(interval(1.9, 1.8, 2.0), 4.179, 1e-9, None, None, None, 100,
                  "no tail patch lies on an interior cell")
    assert ev.claim("H1.content").status is Status.NOT_RESOLVED
    assert "no tail patch" in ev.claim("H1.content").reason


# --- exact checks on a stub detector ----------------------------------------------------------

def write_dataset(root, n, seed):
    rng = np.random.default_rng(seed)
    good = root / "cat" / "train" / "good"
    good.mkdir(parents=True)
    (root / "cat" / "test" / "good").mkdir(parents=True)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((40, 40, 3)) * 255).astype(np.uint8), (0, 0), 1 + i % 3)
        cv2.imwrite(str(good / f"{i:03d}.png"), img)
        cv2.imwrite(str(root / "cat" / "test" / "good" / f"{i:03d}.png"), img)
    return root


def stub_detector(nll, r=0.125, tail_weight=0.7, backbone="b0", seed=0):
    ckpt = SimpleNamespace(grid=(GRID, GRID, 8), backbone={"name": backbone},
                           loss=SimpleNamespace(top_k_ratio=r, tail_weight=tail_weight, selection="topk"),
                           data=SimpleNamespace(category="cat", fingerprint="f" * 64),
                           train=SimpleNamespace(seed=seed))
    return SimpleNamespace(
        ckpt=ckpt, backbone=SimpleNamespace(cfg=SimpleNamespace(input_shape=(SIZE, SIZE))),
        features=lambda samples, cache_dir, progress: torch.zeros(len(samples), 8, GRID, GRID),
        patch_nll=lambda feats, batch_size, progress: torch.as_tensor(nll[:len(feats)]))


@pytest.fixture(scope="module")
def stub_data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("h1"), N_IMAGES, seed=1)


def brute_force(root, nll, k):
    paths = sorted((root / "cat" / "train" / "good").glob("*.png"))
    grads = np.stack([reference_gradient(load_image(p, SIZE), GRID, GRID) for p in paths])
    dist, tail_g, other_g, counts = [], [], [], np.zeros((GRID, GRID), int)
    for img in range(len(paths)):
        order = sorted(range(GRID * GRID), key=lambda c: -nll[img].ravel()[c])
        for c in range(GRID * GRID):
            i, j = divmod(c, GRID)
            if c in order[:k]:
                dist.append(min(i, j, GRID - 1 - i, GRID - 1 - j))
                tail_g.append(grads[img, i, j])
                counts[i, j] += 1
            else:
                other_g.append(grads[img, i, j])
    return np.array(dist), np.array(tail_g), np.array(other_g), counts, grads


def test_run_matches_brute_force(stub_data):
    rng = np.random.default_rng(5)
    nll = rng.normal(size=(N_IMAGES, GRID, GRID)).astype(np.float32)
    res = run(stub_detector(nll), stub_data, "cat", H1Config(n_boot=0, flip_control=False), progress=False)
    k = 2                                                       # round(16 · 0.125)
    dist, tail_g, other_g, counts, _ = brute_force(stub_data, nll, k)
    c = res.context
    assert (c.n_images, c.grid_h, c.grid_w, c.n_patches, c.k, c.split) == (N_IMAGES, 4, 4, 16, k, "train")
    assert res.tail_distance_mean.estimate == pytest.approx(dist.mean())
    assert res.tail_distance_std == pytest.approx(dist.std())
    assert res.uniform_distance_mean == pytest.approx(0.25)     # 4×4: only the 2×2 centre has d = 1
    cells = np.array([min(i, j, 3 - i, 3 - j) for i in range(4) for j in range(4)])
    assert res.ks_statistic == pytest.approx(stats.ks_2samp(dist, np.tile(cells, 100)).statistic)
    assert res.ks_method == KS_METHOD
    assert len(other_g) == N_IMAGES * (16 - k)                  # non-tail = every other patch
    assert res.gradient_tail_mean == pytest.approx(tail_g.mean(), rel=1e-5)
    assert res.gradient_nontail_mean == pytest.approx(other_g.mean(), rel=1e-5)
    assert res.gradient_ratio.estimate == pytest.approx(tail_g.mean() / other_g.mean(), rel=1e-5)
    assert res.mw_p == pytest.approx(stats.mannwhitneyu(tail_g, other_g).pvalue, rel=1e-3)
    brute_delta = np.sign(tail_g[:, None] - other_g[None, :]).mean()
    assert res.cliffs_delta.estimate == pytest.approx(brute_delta, abs=1e-3)
    np.testing.assert_array_equal(res.tail_counts_map, counts)
    assert np.sum(res.tail_share_map) == pytest.approx(1.0)
    np.testing.assert_array_equal(res.tail_distance_counts, np.bincount(dist, minlength=2))
    np.testing.assert_allclose(res.uniform_distance_pmf, [0.75, 0.25])
    gd = res.gradient_distribution
    assert sum(gd.tail_counts) == len(tail_g) and sum(gd.nontail_counts) == len(other_g)
    assert gd.tail_quantiles[4] == pytest.approx(np.median(tail_g), rel=1e-5)
    assert res.gradient_ratio.low is None and res.paired is None


def test_tail_on_border_and_on_gradients(stub_data):
    _, _, _, _, grads = brute_force(stub_data, np.zeros((N_IMAGES, GRID, GRID)), 1)
    border = -np.minimum.outer(np.minimum(np.arange(4), 3 - np.arange(4)),
                               np.minimum(np.arange(4), 3 - np.arange(4))).astype(np.float32)
    on_border = np.tile(border + 1e-3 * np.arange(16).reshape(4, 4), (N_IMAGES, 1, 1))
    res = run(stub_detector(on_border, r=0.5), stub_data, "cat", H1Config(n_boot=0, flip_control=False), progress=False)
    assert res.tail_distance_mean.estimate == 0.0 and res.ks_p < 1e-3
    # NLL = image gradient: the tail is the sharpest patches
    res = run(stub_detector(grads.astype(np.float32), r=0.25), stub_data, "cat",
              H1Config(n_boot=0, flip_control=False), progress=False)
    assert res.gradient_ratio.estimate > 1.1 and res.mw_p < 0.05 and res.cliffs_delta.estimate > 0.2
    g = grads.reshape(N_IMAGES, -1)
    tail = np.zeros_like(g, dtype=bool)
    np.put_along_axis(tail, np.argsort(-g, axis=1)[:, :4], True, axis=1)
    inner = np.zeros((4, 4), bool)
    inner[1:3, 1:3] = True
    inner = np.broadcast_to(inner.ravel(), g.shape)              # the 2×2 centre: d = 1
    assert res.interior_gradient_ratio.estimate == pytest.approx(
        g[tail & inner].mean() / g[~tail & inner].mean(), rel=1e-6)
    assert res.interior_mw_p == pytest.approx(
        stats.mannwhitneyu(g[tail & inner], g[~tail & inner]).pvalue, rel=1e-6)


def test_bootstrap_equals_recomputation_and_paired(stub_data):
    rng = np.random.default_rng(7)
    nll, base_nll = (rng.normal(size=(N_IMAGES, GRID, GRID)).astype(np.float32) for _ in range(2))
    cfg = H1Config(n_boot=60, seed=3, flip_control=False)
    res = run(stub_detector(nll), stub_data, "cat", cfg,
              baseline=stub_detector(base_nll, tail_weight=0.0), progress=False)
    k = 2
    _, _, _, _, grads = brute_force(stub_data, nll, k)
    g = grads.reshape(N_IMAGES, -1)

    def split(values):
        order = np.argsort(-values.reshape(N_IMAGES, -1), axis=1)
        tail = np.zeros_like(g, dtype=bool)
        np.put_along_axis(tail, order[:, :k], True, axis=1)
        return tail

    cand, base = split(nll), split(base_nll)
    d = np.tile(np.minimum.outer(np.minimum(np.arange(4), 3 - np.arange(4)),
                                 np.minimum(np.arange(4), 3 - np.arange(4))).ravel(), (N_IMAGES, 1))
    ratio = lambda t, i: g[i][t[i]].mean() / g[i][~t[i]].mean()
    draws = {"dist": [], "ratio": [], "delta": [], "diff": []}
    boot = np.random.default_rng(3)                              # the bootstrap's own stream
    for _ in range(60):
        i = boot.integers(0, N_IMAGES, N_IMAGES)
        draws["dist"].append(d[i][cand[i]].mean())
        draws["ratio"].append(ratio(cand, i))
        draws["delta"].append(np.sign(g[i][cand[i]][:, None] - g[i][~cand[i]][None, :]).mean())
        draws["diff"].append(ratio(cand, i) - ratio(base, i))
    for name, interval in (("dist", res.tail_distance_mean), ("ratio", res.gradient_ratio),
                           ("delta", res.cliffs_delta), ("diff", res.paired.gradient_ratio.difference)):
        lo, hi = np.percentile(draws[name], [2.5, 97.5])
        assert (interval.low, interval.high) == (pytest.approx(lo, rel=1e-5), pytest.approx(hi, rel=1e-5))
    p = res.paired
    assert p.baseline_tail_weight == 0.0 and p.note == ""
    assert p.tail_distance_mean.baseline.estimate == pytest.approx(d[base].mean())
    assert p.tail_distance_mean.candidate == res.tail_distance_mean
    assert p.tail_distance_mean.difference.estimate == pytest.approx(d[cand].mean() - d[base].mean())
    assert p.gradient_ratio.baseline.estimate == pytest.approx(ratio(base, np.arange(N_IMAGES)), rel=1e-6)
    again = run(stub_detector(nll), stub_data, "cat", cfg,
                baseline=stub_detector(base_nll, tail_weight=0.0), progress=False)
    assert again == res                                          # seeded: same output


def test_bad_inputs(stub_data):
    nll = np.zeros((N_IMAGES, GRID, GRID), np.float32)
    with pytest.raises(MechanismError, match="non-tail"):
        run(stub_detector(nll), stub_data, "cat", H1Config(top_k_ratio=1.0, flip_control=False), progress=False)
    with pytest.raises(MechanismError):
        H1Config(top_k_ratio=0.0)
    with pytest.raises(MechanismError):
        H1Config(max_images=0)
    broken = nll.copy()
    broken[3, 1, 1] = np.nan
    with pytest.raises(MechanismError, match="non-finite"):
        run(stub_detector(broken), stub_data, "cat", H1Config(n_boot=0, flip_control=False), progress=False)
    other = stub_detector(nll)
    other.ckpt.grid = (2, 2, 8)
    with pytest.raises(MechanismError, match="grid"):
        run(stub_detector(nll), stub_data, "cat", H1Config(n_boot=0, flip_control=False), baseline=other, progress=False)


def test_constant_images_give_undefined_gradient_statistics(tmp_path):
    good = tmp_path / "flat" / "train" / "good"
    good.mkdir(parents=True)
    (tmp_path / "flat" / "test").mkdir()
    for i in range(3):
        cv2.imwrite(str(good / f"{i}.png"), np.full((32, 32, 3), 128, np.uint8))
    nll = np.random.default_rng(0).normal(size=(3, GRID, GRID)).astype(np.float32)
    res = run(stub_detector(nll), tmp_path, "flat", H1Config(n_boot=20, flip_control=False), progress=False)
    assert res.gradient_ratio is None and res.mw_p is None
    assert "undefined" in res.gradient_note and res.cliffs_delta.estimate == 0.0
    md = tables.markdown(res)
    assert "| Gradient ratio (tail / non-tail), all cells | — |" in md
    assert "| **Gradient ratio, interior cells** (edge distance ≥ 1) | — |" in md
    assert res.evidence.claim("H1.content").status is Status.NOT_RESOLVED
    assert from_plain(H1Result, json.loads(json.dumps(to_plain(res)))) == res


# --- end to end on the tiny checkpoints ---------------------------------------------------------

def test_end_to_end_tiny(tiny_ckpt, tiny_baseline_ckpt, tiny_data, tiny_cache):
    det = load_detector(tiny_ckpt, torch.device("cpu"))
    base = load_detector(tiny_baseline_ckpt, torch.device("cpu"))
    res = run(det, tiny_data, "brick", H1Config(n_boot=50), baseline=base, cache_dir=tiny_cache,
              progress=False)
    c = res.context
    assert (c.n_patches, c.k, c.grid_h, c.grid_w, c.n_images, c.top_k_ratio) == (16, 2, 4, 4, 8, 0.1)
    assert sum(map(sum, res.tail_counts_map)) == 8 * 2
    assert res.gradient_ratio.low <= res.gradient_ratio.estimate <= res.gradient_ratio.high
    assert res.paired is not None and res.paired.gradient_ratio is not None
    assert from_plain(H1Result, json.loads(json.dumps(to_plain(res)))) == res
    md = tables.markdown(res)
    assert f"**Verdict: {res.evidence.verdict.value}** — " in md
    assert "| Edge distance (uniform), cells | 0.250 |" in md and "`H1.content`" in md
    assert "difference (candidate − baseline)" in md and "N = 16" in md and "k = 2" in md
    assert res.flip_control is not None and "grid-anchoring index G" in md
    rows = tables.csv_rows(res)
    assert rows[-1]["measurement"] == "verdict"
    assert {"claim:H1.location", "grid_anchoring_left-right"} <= {r["measurement"] for r in rows}
    assert all(not isinstance(v, (list, dict, tuple)) for r in rows for v in r.values())


# --- the flip control on two hand-made models -------------------------------------------------

class PooledModel:
    """A detector whose features are the grey image pooled to the grid (D = 1) and whose patch
    NLL is ``nll_of(features)``: the flow runs on flipped inputs like the real one."""

    def __init__(self, nll_of, seed=0):
        self.nll_of = nll_of
        self.ckpt = stub_detector(None, seed=seed).ckpt
        self.backbone = SimpleNamespace(cfg=SimpleNamespace(input_shape=(SIZE, SIZE)))

    def image_features(self, images):
        return torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), SIZE // GRID)

    def features(self, samples, cache_dir, progress):
        return self.image_features(torch.stack([torch.from_numpy(load_image(s.path, SIZE))
                                                for s in samples]))

    def patch_nll(self, feats, batch_size, progress):
        return self.nll_of(feats)[:, 0]

    def flow(self, x):
        from mechanism.flow.model import HALF_LOG_2PI, FlowOutput
        return FlowOutput(torch.zeros_like(x), -(self.nll_of(x)[:, 0] - HALF_LOG_2PI))


@pytest.fixture(scope="module")
def bright_right(tmp_path_factory):
    """Images whose right quarter is brighter: content that sits on the right column."""
    root = tmp_path_factory.mktemp("flip")
    good = root / "cat" / "train" / "good"
    good.mkdir(parents=True)
    (root / "cat" / "test").mkdir()
    rng = np.random.default_rng(9)
    for i in range(12):
        img = (rng.random((SIZE, SIZE, 3)) * 100).astype(np.uint8)
        img[:, -SIZE // GRID:] += 120
        cv2.imwrite(str(good / f"{i:03d}.png"), img)
    return root


def test_flip_control_content_following_model(bright_right):
    res = run(PooledModel(lambda x: x), bright_right, "cat", H1Config(n_boot=200), progress=False)
    lr = {o.flip: o for o in res.flip_control.flips}["left-right"]
    assert res.flip_control.original_sides["right"].estimate == 1.0
    assert lr.sides["left"].estimate == 1.0 and lr.sides["right"].estimate == 0.0
    assert lr.anchoring.estimate == pytest.approx(-1.0) and "follows the image content" in lr.reading
    border = lr.cells[0]
    assert border.content_following.estimate == 1.0 and border.grid_anchored.estimate == 0.0
    assert border.chance_content_following < 1.0            # another image's content differs
    assert lr.cells[1].n_tail_cells == 0 and lr.cells[1].grid_anchored is None


def test_flip_control_grid_anchored_model(bright_right):
    position = torch.linspace(0, 1, GRID * GRID).reshape(1, 1, GRID, GRID).transpose(2, 3)
    res = run(PooledModel(lambda x: position.expand(len(x), -1, -1, -1)), bright_right, "cat",
              H1Config(n_boot=200), progress=False)
    control = res.flip_control
    for o in control.flips:
        assert o.sides == control.original_sides or o.flip == "top-bottom"
        assert all(c.grid_anchored is None or c.grid_anchored.estimate == 1.0 for c in o.cells)
    lr = control.flips[0]
    assert lr.anchoring.estimate == pytest.approx(1.0) and "stays on the grid" in lr.reading
    assert lr.cells[0].content_following.estimate == 0.0
    # every image has the same tail: another image's flipped tail matches as well — the cell
    # level cannot tell a shared edge preference from anchoring, hence the chance column
    assert lr.cells[0].chance_grid_anchored == 1.0
    tb = control.flips[1]                       # the tail (bottom-right) is also asymmetric top–bottom
    assert tb.anchoring.estimate == pytest.approx(1.0)
    assert control.uniform_sides == {"top": 0.25, "bottom": 0.25, "left": 0.25, "right": 0.25,
                                     "corners": 0.25}


def test_several_seeds_average_each_seed_and_pool_the_maps(stub_data):
    """Two training seeds' checkpoints: each estimate is the mean of the two single-seed
    analyses, the tests' p the larger, maps and counts the sums; the claims carry S = 2."""
    rng = np.random.default_rng(11)
    nll = [rng.normal(size=(N_IMAGES, GRID, GRID)).astype(np.float32) for _ in range(4)]
    cfg = H1Config(n_boot=50, seed=2, flip_control=False)
    one = [run(stub_detector(nll[s]), stub_data, "cat", cfg, baseline=stub_detector(nll[s + 2], tail_weight=0.0),
               progress=False) for s in (0, 1)]
    both = run(stub_detector(nll[0]), stub_data, "cat", cfg, baseline=stub_detector(nll[2], tail_weight=0.0),
               progress=False, replicates=[(stub_detector(nll[1], seed=1),
                                            stub_detector(nll[3], tail_weight=0.0, seed=1))])
    for field in ("tail_distance_mean", "gradient_ratio", "interior_gradient_ratio", "cliffs_delta"):
        assert getattr(both, field).estimate == pytest.approx(np.mean([getattr(r, field).estimate for r in one]))
    assert both.paired.tail_distance_mean.difference.estimate == pytest.approx(
        np.mean([r.paired.tail_distance_mean.difference.estimate for r in one]))
    np.testing.assert_array_equal(both.tail_counts_map, np.add(*(r.tail_counts_map for r in one)))
    assert np.sum(both.tail_share_map) == pytest.approx(1.0)
    assert both.ks_p == max(r.ks_p for r in one) and both.mw_p == max(r.mw_p for r in one)
    assert both.context.training_seeds == (0, 1) and both.context.n_seeds == 2
    assert {c.n_seeds for c in both.evidence.claims} == {2}
    assert "largest over 2 seeds" in both.evidence.claim("H1.location").note
    with pytest.raises(MechanismError, match="all have a baseline"):
        run(stub_detector(nll[0]), stub_data, "cat", cfg, baseline=stub_detector(nll[2], tail_weight=0.0),
            progress=False, replicates=[(stub_detector(nll[1], seed=1), None)])
    with pytest.raises(MechanismError, match="distinct training seeds"):
        run(stub_detector(nll[0]), stub_data, "cat", cfg, progress=False,
            replicates=[(stub_detector(nll[1]), None)])


def test_flip_control_over_a_grid_anchored_and_a_content_following_seed(bright_right):
    """One seed's model follows the content (G = −1), the other's is anchored to the grid
    (G = +1): G is their mean, 0, and its interval over seeds × images spans both."""
    position = torch.linspace(0, 1, GRID * GRID).reshape(1, 1, GRID, GRID).transpose(2, 3)
    content = PooledModel(lambda x: x)
    anchored = PooledModel(lambda x: position.expand(len(x), -1, -1, -1), seed=1)
    res = run(content, bright_right, "cat", H1Config(n_boot=300), progress=False,
              replicates=[(anchored, None)])
    lr = res.flip_control.flips[0]
    assert lr.anchoring.estimate == pytest.approx(0.0)
    assert lr.anchoring.low == pytest.approx(-1.0) and lr.anchoring.high == pytest.approx(1.0)
    assert "undecided" in lr.reading
    assert res.flip_control.original_sides["right"].estimate == 1.0   # both put the tail right


def test_grid_anchoring_pools_counts_over_seeds():
    """G over seeds is Σ asymmetry(flipped) / Σ asymmetry(original), not a mean of per-seed
    ratios: a seed with a small original asymmetry (its own G would be 2.5) does not
    dominate. Two anchored seeds (G = 1) and that seed: G = (5 + 5 + 5) / (5 + 5 + 2)."""
    from mechanism.analyzers.h1_edge import flip_control
    right, left, middle = 3, 0, 5                      # cells of a 4×4 grid: right/left column, interior

    def masks(n_right, n_left):                        # 10 images, one tail cell each, 8 times
        cells = [right] * n_right + [left] * n_left + [middle] * (10 - n_right - n_left)
        m = np.zeros((80, 16), bool)
        m[np.arange(80), cells * 8] = True
        return m

    anchored = masks(6, 1)
    seeds = [(anchored, anchored), (anchored, anchored), (masks(5, 3), masks(6, 1))]
    control = flip_control([o for o, _ in seeds], [{"left-right": f, "top-bottom": f} for _, f in seeds],
                           4, 4, 200, 0)
    lr = control.flips[0]
    assert lr.asymmetry_original.estimate == pytest.approx((0.5 + 0.5 + 0.2) / 3)
    assert lr.anchoring.estimate == pytest.approx(1.5 / 1.2)            # mean of ratios: 1.5
    assert lr.anchoring.low > 0


def test_flip_control_is_confounded_when_flipped_images_look_anomalous(bright_right):
    """A model whose NLL weighs the left columns more: flipping moves the bright content there,
    so every flipped image scores above the originals' 95th percentile — the control says it is
    confounded instead of reading G. A content model keeps flipped images as normal as the
    originals."""
    from mechanism.report.tables.h1 import control_sentence
    weight = torch.arange(GRID, 0, -1, dtype=torch.float32).reshape(1, 1, 1, GRID)
    res = run(PooledModel(lambda x: x * weight), bright_right, "cat", H1Config(n_boot=100),
              progress=False)
    lr = res.flip_control.flips[0]
    assert lr.flipped_unusual.estimate == 1.0 and lr.reading.startswith("confounded")
    assert "does not decide" in control_sentence(res.flip_control)
    plain = run(PooledModel(lambda x: x), bright_right, "cat", H1Config(n_boot=100), progress=False)
    assert plain.flip_control.flips[0].flipped_unusual.estimate <= 1 / 12   # the originals' own rate
