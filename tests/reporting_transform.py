"""A SADATransform that also outputs the epoch and strength each example was transformed with.

In a module of its own that imports only sada_hf's transform: spawned dataloader workers import it.
"""

from __future__ import annotations

from sada_hf.transform import SADATransform


class ReportingTransform(SADATransform):
    def __call__(self, batch):
        output = super().__call__(batch)
        indices = output[self.index_column]
        output["seen_strength"] = self.schedule.lookup(indices)
        output["seen_epoch"] = [int(self.schedule.epoch)] * len(indices)
        return output
