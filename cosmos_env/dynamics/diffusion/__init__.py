"""EDM diffusion dynamics: network (DiT), denoiser (EDM scalings and loss), samplers."""
