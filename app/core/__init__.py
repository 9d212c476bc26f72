"""Everything a user's data passes through, without a GUI (never imports Qt)."""
