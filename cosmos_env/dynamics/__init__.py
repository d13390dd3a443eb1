"""Action-conditioned latent dynamics: diffusion (and autoregressive) world models, the
action embedding and state probe they share, training, and the release format."""
