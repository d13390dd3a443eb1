"""Frame metrics: PSNR and SSIM on images in [0, 1] or [-1, 1] (say which with ``data_range``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """PSNR in dB per image over all but the first dim; inputs (N, ...), same shape."""
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Mean SSIM per image (Wang et al. 2004: 11x11 Gaussian, sigma 1.5, K1=0.01, K2=0.03);
    inputs (N, C, H, W)."""
    c = pred.shape[1]
    g = _gaussian_window().to(pred.device)
    window = (g[:, None] * g[None, :]).expand(c, 1, -1, -1).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    x, y = pred.float(), target.float()
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return (num / den).flatten(1).mean(1)


def to_unit(frames_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return frames_uint8.movedim(-1, -3).float() / 127.5 - 1.0


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [-1, 1] -> uint8 (..., H, W, 3)."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1)


def position_errors_cm(pred: np.ndarray, true: np.ndarray, index: slice) -> np.ndarray:
    """Euclidean error (cm) of the 3-d position at state dims ``index`` (a StateSpec
    slot); states (..., S) -> (...)."""
    pred, true = np.asarray(pred), np.asarray(true)
    return np.linalg.norm(pred[..., index] - true[..., index], axis=-1) * 100
