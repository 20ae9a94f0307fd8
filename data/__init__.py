"""Bundled inputs (installed as the package ``etc2calm_data``): district files, synthetic networks, ward outlines."""
