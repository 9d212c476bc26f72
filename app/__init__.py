"""DVIS Studio: video panoptic segmentation with DVIS, correction and VIPSeg export."""

__version__ = "0.1.0"
