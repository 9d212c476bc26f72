"""Data files shipped with DVIS Studio, installed as the package ``dvis_resources``; find them with
``dvis_models.resources``."""
