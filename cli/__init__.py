"""The `laser` command line (installed as the package ``laser_gs_cli``)."""
