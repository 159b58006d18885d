"""Procedural labeled scenes with synthetic dense features (the embedded default scene)."""

from laser_gs.synthetic.features import FeatureNoise, synthesize_features
from laser_gs.synthetic.generator import GeneratedScene, SceneSpec, make_scene, render_scene

__all__ = ["FeatureNoise", "GeneratedScene", "SceneSpec", "make_scene", "render_scene", "synthesize_features"]
