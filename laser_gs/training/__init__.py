"""Training machinery shared by every backend: checkpoints, the iteration loop, progress, ray
batches and the semantic (stage 2) losses."""
