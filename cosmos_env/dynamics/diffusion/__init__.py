"""EDM diffusion dynamics: its composed config, network (DiT), denoiser (EDM scalings and
loss), samplers and model card."""
