"""Dense feature sources and the precomputed feature-directory format."""

from laser_gs.features.precomputed import FeatureSet, load_feature_dir, write_feature_dir

__all__ = ["FeatureSet", "load_feature_dir", "write_feature_dir"]
