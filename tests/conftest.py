"""Shared test set-up: Qt runs offscreen, torch uses few threads (CI has 2 cores).

``DVIS_TEST_DEVICE=cuda`` runs the model tests that take the ``device`` fixture on that device (CPU by
default). Those test modules import nothing from Qt, so they also run on a GPU machine without PySide6.
"""

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def device():
    """The torch device model tests run on; reference computations stay exact there (no TF32)."""
    import torch

    name = os.environ.get("DVIS_TEST_DEVICE", "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            pytest.fail(f"DVIS_TEST_DEVICE={name} but torch sees no CUDA device.")
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 references compared bit for bit
        torch.backends.cudnn.allow_tf32 = False
    return torch.device(name)
