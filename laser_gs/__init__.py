"""laser_gs: language-guided 3D segmentation.

Reconstruct a scene from posed photos, distil dense CLIP features into it and
segment it in 3D from text. Implements *Laser* (TPAMI 2025) with a TensoRF
reference backend and a Gaussian-splatting backend.
"""

from laser_gs.errors import LaserError, SceneError

__version__ = "0.1.0"

__all__ = ["LaserError", "SceneError", "__version__"]
