"""Training of the three DVIS stages (segmenter, referring tracker, temporal refiner).

``matcher`` / ``criterion`` / ``point_sampling``: the Mask2Former set losses; ``stages``: what each
stage trains, freezes and matches; ``optim``: AdamW groups and the lr schedule; ``trainer``: the loop
(DDP, clipping, progress); ``training_state``: the resumable state file; ``distributed``: torchrun set-up.
"""
