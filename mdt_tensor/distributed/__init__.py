"""Reward jobs past one machine: epoch batches and one huge subnet over ``torch.distributed`` ranks.

``run_epochs`` shards a batch of epoch jobs (subnets x epoch sequences) over the ranks of an
initialised process group (gloo on CPU, NCCL on GPU, launched by ``torchrun``) and gathers the
results, or writes them per rank (``out_dir``); ``map_jobs`` does the same for any per-job
function (one job per snapshot file). ``column_sharded_epoch`` spreads one subnet's neuron
columns over the ranks. Results equal a single-process run, bit for bit in exact mode; a rank
that fails makes every rank raise :class:`DistributedJobError` naming it. Design notes, README
text and the CLI wiring: ``docs/design/distributed.md``.
"""

from __future__ import annotations

from .batch import DistributedRun, map_jobs, run_epochs
from .columns import ColumnShardResult, column_sharded_epoch, shard_columns
from .comm import CollectiveError, DistributedJobError, ProcessGroupError, shard_range
from .files import iter_parts, load_parts

__all__ = [
    "run_epochs",
    "DistributedRun",
    "map_jobs",
    "column_sharded_epoch",
    "ColumnShardResult",
    "shard_columns",
    "shard_range",
    "load_parts",
    "iter_parts",
    "DistributedJobError",
    "CollectiveError",
    "ProcessGroupError",
]
