"""Package layout only (metadata is in pyproject.toml): the repository's ``cli/`` folder installs as
``laser_gs_cli``, so no global package named ``cli`` is installed."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["laser_gs", "laser_gs.*"]) + ["laser_gs_cli"],
      package_dir={"laser_gs_cli": "cli"})
