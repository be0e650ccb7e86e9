"""Pictures of region files and latent zones (matplotlib)."""
