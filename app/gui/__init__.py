"""The PySide6 desktop app. Importing this package must not import torch (fast start-up)."""
