"""The integer outputs of the compat helpers are the same on every device."""

from __future__ import annotations

import pytest
import torch

import mdt_tensor as mt

from tests.helpers import DEVICES
from .references import U16_MAX


@pytest.mark.parametrize("device", DEVICES)
def test_integer_outputs_identical_on_every_device(device):
    gen = torch.Generator().manual_seed(5)
    scores = torch.rand(8, 300, generator=gen, dtype=torch.float64) ** 6
    scores[:4, 150:] = 0
    values = torch.randint(0, U16_MAX + 1, (8, 300), generator=gen)
    cpu_submit = mt.scores_to_weights(scores, k=200, max_weight_limit=0.05, min_allowed_weights=10)
    dev_submit = mt.scores_to_weights(scores.to(device), k=200, max_weight_limit=0.05, min_allowed_weights=10)
    for cpu_part, dev_part in zip(cpu_submit[:3], dev_submit[:3]):
        assert dev_part.device.type == device
        assert torch.equal(dev_part.cpu(), cpu_part)
    assert torch.equal(mt.u16_max_upscale(values.to(device)).cpu(), mt.u16_max_upscale(values))
    cpu_emit = mt.convert_weights_and_uids_for_emit(torch.arange(300), scores)
    dev_emit = mt.convert_weights_and_uids_for_emit(torch.arange(300, device=device), scores.to(device))
    for cpu_part, dev_part in zip(cpu_emit, dev_emit):
        assert torch.equal(dev_part.cpu(), cpu_part)
