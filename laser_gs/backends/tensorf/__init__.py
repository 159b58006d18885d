"""TensoRF backend (the paper's reference representation); importing it registers ``tensorf``."""

from laser_gs.backends.tensorf.backend import TensoRFBackend

__all__ = ["TensoRFBackend"]
