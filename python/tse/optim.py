"""Optimisers, learning-rate schedules and gradient clipping (``tse::optim``), as torch.optim.

``AdamW`` and ``SGD`` apply PyTorch's update rules (``torch.optim.AdamW`` / ``torch.optim.SGD``,
element by element, in the parameters' dtype) with one fused native kernel per tensor::

    opt = tse.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = tse.optim.WarmupHoldDecay(opt, warmup_steps=4000, decay_factor=0.9, decay_every=10000)
    for batch in data:
        opt.zero_grad()
        loss(model, batch).backward()
        tse.optim.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()

``params`` is an iterable of Tensors, or a list of dicts (parameter groups, as torch):
``[{"params": enc, "lr": 1e-4}, {"params": head}]``; a group's keys override the constructor's
(AdamW: lr, betas, eps, weight_decay, amsgrad; SGD: lr, momentum, dampening, weight_decay,
nesterov); an unknown key is a ValueError. Parameters without a gradient are skipped by ``step()``.

Learning rates: ``opt.param_groups`` is a list of live views; ``g["lr"]`` / ``g.lr`` read and
write the group's lr (the other keys are read-only). ``opt.get_lr(group)`` and
``opt.set_lr(lr, group=None)`` do the same (``group=None``: every group). The schedules scale each
group's ``initial_lr`` (its lr when the optimiser was built).

Schedules (call ``step()`` once after each optimiser step; the n-th optimiser update runs with the
lr for scheduler step n - 1, so construction already sets the lr for the first update):
  * ``WarmupHoldDecay(opt, warmup_steps=4000, hold_steps=0, decay_factor=0.9, decay_every=10000)``
    (Saijo et al.): update n <= W uses initial_lr * n / W; afterwards
    initial_lr * decay_factor ** ((n - 1 - W - hold_steps)^+ // decay_every).
  * ``CosineSchedule(opt, total_steps, warmup_steps=0, min_lr=0)``: the same linear warm-up, then
    cosine annealing from initial_lr to min_lr, reached at update total_steps + 1.
  * ``ReduceLROnPlateau(opt, mode="min", factor=0.3, patience=5, threshold=1e-4, threshold_mode="rel",
    cooldown=0, min_lr=5e-6)``: torch's semantics with CLAPSep's settings; ``step(metric)``.

Checkpoints: ``opt.state_dict()`` is ``{"tensors": {"state.{i}.exp_avg": Tensor, ...}, "json": str}``
(i: the parameter's index over all groups); save the tensors with ``tse.io.save_safetensors`` and
the JSON beside them. ``load_state_dict`` checks the optimiser type, the groups, the parameter
counts and every tensor's shape and dtype before changing anything (ValueError naming what
differs); afterwards training continues bit-identically. Schedules have
``state_dict()`` / ``load_state_dict()`` too (``{"json": str}``).

``clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False)`` returns the
total norm as a float (torch returns a tensor); ``norm_type`` may be ``float("inf")`` or ``"inf"``.
``clip_grad_value_(parameters, clip_value)`` clamps in place. Both accept a Tensor or an iterable.
"""

from ._C.optim import (
    SGD,
    AdamW,
    CosineSchedule,
    LRScheduler,
    Optimizer,
    ParamGroup,
    ReduceLROnPlateau,
    WarmupHoldDecay,
    clip_grad_norm_,
    clip_grad_value_,
)

__all__ = [
    "AdamW",
    "CosineSchedule",
    "LRScheduler",
    "Optimizer",
    "ParamGroup",
    "ReduceLROnPlateau",
    "SGD",
    "WarmupHoldDecay",
    "clip_grad_norm_",
    "clip_grad_value_",
]
