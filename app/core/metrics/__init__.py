"""Metrics: VPQ and STQ exactly as VIPSeg's evaluators compute them, and tracking-stability diagnostics."""

from app.core.metrics.common import MetricsError, VideoPair
from app.core.metrics.diagnostics import (
    Diagnostic,
    DiagnosticsConfig,
    annotation_diagnosis,
    diagnose,
    stability_diagnostics,
)
from app.core.metrics.evaluate import Evaluation, evaluate, evaluate_folders, evaluation, folder_pairs
from app.core.metrics.stq import STQResult, stq
from app.core.metrics.vpq import VIPSEG_WINDOWS, VPQResult, vpq

__all__ = [
    "VIPSEG_WINDOWS",
    "Diagnostic",
    "DiagnosticsConfig",
    "annotation_diagnosis",
    "Evaluation",
    "MetricsError",
    "STQResult",
    "VPQResult",
    "VideoPair",
    "diagnose",
    "evaluate",
    "evaluate_folders",
    "evaluation",
    "folder_pairs",
    "stability_diagnostics",
    "stq",
    "vpq",
]
