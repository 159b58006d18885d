"""Gaussian-splatting backend; importing it registers ``gsplat``."""

from laser_gs.backends.gsplat.backend import GsplatBackend

__all__ = ["GsplatBackend"]
