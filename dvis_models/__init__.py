"""DVIS (segmenter + referring tracker + temporal refiner) in plain PyTorch. Never imports Qt or `app`."""
