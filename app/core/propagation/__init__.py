"""Semi-automatic labelling: propagate a corrected mask through the video, and prompted masks on one frame.

The model-based parts (``segmenter``, ``model_engine``) import torch; import them only where a model runs.
"""
