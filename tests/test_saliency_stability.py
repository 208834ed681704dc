"""ncp_control.agents.evaluation.saliency_stability: SSIM against a brute-force reference and closed forms; the clean/noisy protocol."""

import gymnasium as gym
import numpy as np
import pytest

from ncp_control.agents.evaluation.saliency_stability import perturb_frames, saliency_stability, ssim, ssim_map
from ncp_control.envs.perturbations import gaussian_blur, make_perturbation
from tests._robust_helpers import MeanPixel

TINY = "tests.imitation_synthetic:TinyLane-v0"


def gaussian_kernel(sigma, truncate=4.0):
    """Normalised 1-D Gaussian kernel of radius int(truncate * sigma + 0.5) (scipy.ndimage's convention)."""
    radius = int(truncate * sigma + 0.5)
    weights = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return weights / weights.sum()


def brute_force_ssim_map(a, b, data_range, sigma):
    """Per pixel: weighted means, variances and covariance over an explicit 2-D Gaussian window (mirrored)."""
    k = gaussian_kernel(sigma)
    w = np.outer(k, k)  # 2-D window, sums to 1
    r = len(k) // 2
    pa, pb = np.pad(a, r, mode="symmetric"), np.pad(b, r, mode="symmetric")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    out = np.zeros(a.shape)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            x, y = pa[i : i + 2 * r + 1, j : j + 2 * r + 1], pb[i : i + 2 * r + 1, j : j + 2 * r + 1]
            mx, my = (w * x).sum(), (w * y).sum()
            vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
            cov = (w * (x - mx) * (y - my)).sum()
            out[i, j] = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return out


def test_ssim_map_matches_the_brute_force_definition():
    rng = np.random.default_rng(0)
    a = rng.random((9, 11))
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    np.testing.assert_allclose(ssim_map(a, b, 1.0, sigma=1.0), brute_force_ssim_map(a, b, 1.0, 1.0), atol=1e-10)
    np.testing.assert_allclose(ssim_map(a, b, 1.0), brute_force_ssim_map(a, b, 1.0, 1.5), atol=1e-10)


def test_ssim_map_equals_scikit_images_full_map_at_its_truncation():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    a = rng.random((24, 40))
    b = np.clip(a + 0.3 * rng.standard_normal(a.shape), 0, 1)
    _, reference = metrics.structural_similarity(
        a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
    )
    np.testing.assert_allclose(ssim_map(a, b, 1.0, truncate=3.5), reference, rtol=0, atol=1e-10)
    assert not np.allclose(ssim_map(a, b, 1.0), reference, atol=1e-6)  # our default window is wider (4 sigma)


def test_ssim_closed_forms_and_properties():
    a = np.full((6, 6), 0.2)
    b = np.full((6, 6), 0.6)
    # flat images: no variance, SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), C1 = 1e-4
    assert ssim(a, b, 1.0) == pytest.approx((2 * 0.12 + 1e-4) / (0.04 + 0.36 + 1e-4), rel=1e-12)
    rng = np.random.default_rng(1)
    x = rng.random((16, 16))
    assert ssim(x, x, 1.0) == pytest.approx(1.0, abs=1e-12)
    assert ssim(x, 1 - x, 1.0) < 0  # inverted structure
    mild, strong = (np.clip(x + s * rng.standard_normal(x.shape), 0, 1) for s in (0.05, 0.3))
    assert 1 > ssim(x, mild, 1.0) > ssim(x, strong, 1.0)
    assert ssim(x, mild, 1.0) == pytest.approx(ssim(mild, x, 1.0))
    assert ssim(255 * x, 255 * mild, 255.0) == pytest.approx(ssim(x, mild, 1.0))  # scale invariant with L
    with pytest.raises(ValueError, match="one shape"):
        ssim(x, x[:-1], 1.0)
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, x, 0.0)


def test_perturb_frames_gives_the_draws_of_the_live_episode():
    import tests._robust_helpers  # noqa: F401  registers Probe-v0 (observations do not depend on actions)

    live = make_perturbation(gym.make("Probe-v0"), "pixel_noise:0.3", seed=7)
    clean_env = gym.make("Probe-v0")
    noisy, clean = [live.reset(seed=42)[0]], [clean_env.reset(seed=42)[0]]
    for _ in range(5):
        noisy.append(live.step(np.zeros(1))[0])
        clean.append(clean_env.step(np.zeros(1))[0])
    replayed = perturb_frames(np.stack(clean), "pixel_noise:0.3", clean_env.observation_space, 42, 7)
    np.testing.assert_array_equal(replayed, np.stack(noisy))
    assert not np.array_equal(replayed, np.stack(clean))


def local_contrast(frames):
    """A simple saliency stand-in: |frame - blurred frame|, mean over colour channels -> (T, H, W)."""
    x = frames.astype(np.float64) / 255.0
    return np.stack([np.abs(f - gaussian_blur(f, 1.0)).mean(axis=-1) for f in x])  # mean over channels


def test_saliency_stability_is_one_without_noise_and_falls_with_it():
    policy = MeanPixel(0.0, 0.0)
    policy.observation_space = None
    kwargs = dict(episodes=2, seed=1_000_000, max_frames=20)
    clean = saliency_stability(policy, local_contrast, TINY, "pixel_noise:0", **kwargs)
    mild = saliency_stability(policy, local_contrast, TINY, "pixel_noise:0.1", **kwargs)
    strong = saliency_stability(policy, local_contrast, TINY, "pixel_noise:0.4", **kwargs)
    assert clean["mean_ssim"] == pytest.approx(1.0, abs=1e-12) and clean["frames"] == 40
    assert 1.0 > mild["mean_ssim"] > strong["mean_ssim"]
    assert saliency_stability(policy, local_contrast, TINY, "pixel_noise:0.1", **kwargs) == mild  # seeded
    with pytest.raises(ValueError, match="maps"):
        saliency_stability(policy, lambda f: f.mean(axis=(1, 2)), TINY, "pixel_noise:0.1", **kwargs)
