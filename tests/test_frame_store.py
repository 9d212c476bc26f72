"""FrameStore: spilled series read back exactly what was appended, across drops, like in-memory ones."""

import torch

from dvis_models.frame_store import FrameStore


def test_spilled_and_in_memory_series_agree(tmp_path):
    torch.manual_seed(0)
    batches = [{"big": torch.randn(n, 4, 5, 6).half(), "small": torch.randn(n, 3)} for n in (3, 3, 2, 3)]
    with FrameStore() as memory, FrameStore(spill=("big",), spill_dir=tmp_path) as disk:
        for store in (memory, disk):
            for batch in batches[:3]:
                store.append(batch)
            store.drop_before(5)  # keep frames 5..7, then add 8..10
            store.append(batches[3])
        assert memory.start == disk.start == 5
        for name in ("big", "small"):
            everything = torch.cat([b[name] for b in batches])[5:]
            for frames in (slice(0, 6), slice(2, 4), slice(5, 6), slice(6, 6)):
                assert torch.equal(disk.get(name, frames), everything[frames])
                assert torch.equal(memory.get(name, frames), everything[frames])
        assert disk.get("big", slice(0, 6)).dtype == torch.float16
