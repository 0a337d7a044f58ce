"""tse.optim through Python: AdamW and SGD against numpy reference formulas (PyTorch's), parameter
groups from dicts and the lr views, skipped parameters, the schedules against hand-computed lr
sequences, gradient clipping, state_dict round trips (through a safetensors file) that continue
bit-identically, a least-squares fit, and the errors."""

import json
import math

import numpy as np
import pytest

import tse


def param(values, dtype=np.float64):
    return tse.from_numpy(np.array(values, dtype=dtype)).requires_grad_()


def grads(step, shape, salt=0, dtype=np.float64):
    n = int(np.prod(shape))
    i = np.arange(n)
    g = np.sin(0.7 * i + 1.3 * step + salt) * (1 + 0.1 * i) + 0.05
    return g.reshape(shape).astype(dtype)


def set_grad(p, g):
    p.grad = tse.from_numpy(np.array(g))  # a copy: from_numpy shares memory, clipping writes in place


def adamw_ref(p, gs, lr, b1, b2, eps, wd, amsgrad):
    p = p.astype(np.float64).copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        p *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vh = vmax if amsgrad else v
        p -= lr / (1 - b1**t) * m / (np.sqrt(vh) / math.sqrt(1 - b2**t) + eps)
    return p


def sgd_ref(p, gs, lr, momentum, dampening, wd, nesterov):
    p = p.astype(np.float64).copy()
    buf = None
    for g in gs:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g
    return p


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_adamw_matches_numpy(amsgrad, dtype, tol):
    p0 = np.cos(np.arange(12.0)).reshape(3, 4)
    gs = [grads(s, (3, 4)) * (0.1 if s >= 4 else 1.0) for s in range(8)]
    p = param(p0, dtype)
    opt = tse.optim.AdamW([p], lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1, amsgrad=amsgrad)
    for g in gs:
        set_grad(p, g.astype(dtype))
        opt.step()
    want = adamw_ref(p0.astype(dtype), [g.astype(dtype).astype(np.float64) for g in gs], 0.05, 0.8, 0.95, 1e-6, 0.1,
                     amsgrad)
    np.testing.assert_allclose(p.detach().numpy(), want, rtol=tol, atol=tol)
    keys = set(opt.state_dict()["tensors"])
    assert keys == {"state.0.exp_avg", "state.0.exp_avg_sq"} | ({"state.0.max_exp_avg_sq"} if amsgrad else set())


@pytest.mark.parametrize("momentum,dampening,wd,nesterov",
                         [(0, 0, 0, False), (0, 0, 0.1, False), (0.9, 0, 0, False), (0.9, 0.3, 0.05, False),
                          (0.8, 0, 0.05, True)])
def test_sgd_matches_numpy(momentum, dampening, wd, nesterov):
    p0 = np.cos(np.arange(7.0))
    gs = [grads(s, (7,), 3) for s in range(6)]
    p = param(p0)
    opt = tse.optim.SGD([p], lr=0.03, momentum=momentum, dampening=dampening, weight_decay=wd, nesterov=nesterov)
    for g in gs:
        set_grad(p, g)
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), sgd_ref(p0, gs, 0.03, momentum, dampening, wd, nesterov),
                               rtol=1e-13, atol=1e-13)


def test_sgd_first_momentum_step_by_hand():
    p = param([1.0])
    opt = tse.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.1)
    for want in (0.9, 0.72):  # buf = 1, then 0.9 * 1 + 0.9 * 1 = 1.8
        set_grad(p, np.ones(1))
        opt.step()
        assert p.item() == pytest.approx(want, rel=1e-15)


def test_f32_agrees_with_f64():
    p0 = np.cos(np.arange(300.0))
    p64, p32 = param(p0), param(p0, np.float32)
    o64, o32 = tse.optim.AdamW([p64], lr=1e-2), tse.optim.AdamW([p32], lr=1e-2)
    for s in range(30):
        g = grads(s, (300,), 5)
        set_grad(p64, g)
        set_grad(p32, g.astype(np.float32))
        o64.step()
        o32.step()
    np.testing.assert_allclose(p32.detach().numpy(), p64.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_groups_from_dicts_and_lr_views():
    a, b, c = param([1.0]), param([1.0]), param([1.0])
    opt = tse.optim.SGD([{"params": [a], "lr": 0.1}, {"params": b, "momentum": 0.9}, {"params": [c], "lr": 0.2}],
                        lr=0.5)
    groups = opt.param_groups
    assert [g["lr"] for g in groups] == [0.1, 0.5, 0.2]
    assert groups[1]["momentum"] == 0.9 and groups[0]["momentum"] == 0.0
    assert groups[1]["initial_lr"] == 0.5
    assert "nesterov" in groups[0] and "betas" not in groups[0]
    assert groups[0].params[0] is not None and len(groups[0]["params"]) == 1
    for p in (a, b, c):
        set_grad(p, np.ones(1))
    opt.step()
    assert [a.item(), b.item(), c.item()] == pytest.approx([0.9, 0.5, 0.8])
    groups[0]["lr"] = 0.01
    groups[1].lr = 0.02
    assert opt.get_lr(0) == 0.01 and opt.get_lr(1) == 0.02 and opt.param_groups[1].lr == 0.02
    opt.set_lr(0.3)
    assert [g.lr for g in opt.param_groups] == [0.3, 0.3, 0.3]
    opt.set_lr(0.4, group=2)
    assert opt.get_lr(2) == 0.4
    with pytest.raises(KeyError, match="only 'lr'"):
        groups[0]["momentum"] = 0.5
    a2 = param([1.0])
    adam = tse.optim.AdamW([{"params": [a2], "betas": (0.5, 0.6), "amsgrad": True}])
    assert adam.param_groups[0]["betas"] == (0.5, 0.6) and adam.param_groups[0]["amsgrad"] is True
    assert adam.param_groups[0]["weight_decay"] == 0.01


def test_params_without_grad_are_skipped_and_zero_grad():
    a, b = param([1.0, 2.0]), param([3.0])
    opt = tse.optim.AdamW([a, b])
    set_grad(a, np.ones(2))
    opt.step()
    assert b.item() == 3.0
    assert not np.array_equal(a.detach().numpy(), [1.0, 2.0])
    st = opt.state_dict()
    assert set(st["tensors"]) == {"state.0.exp_avg", "state.0.exp_avg_sq"}
    assert json.loads(st["json"])["steps"] == [1, 0]
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert a.grad is None


def lrs(opt, sched, n):
    out = [opt.get_lr()]
    for _ in range(n - 1):
        sched.step()
        out.append(opt.get_lr())
    return out


def test_warmup_hold_decay():
    opt = tse.optim.SGD([param([1.0])], lr=1.0)
    s = tse.optim.WarmupHoldDecay(opt, warmup_steps=4, hold_steps=2, decay_factor=0.5, decay_every=3)
    assert lrs(opt, s, 13) == [0.25, 0.5, 0.75, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert s.get_last_lr() == [0.25] and s.steps == 12
    paper = tse.optim.WarmupHoldDecay(opt)  # 4000 warm-up steps, x0.9 every 10000
    assert paper.lr_at(1e-3, 3999) == pytest.approx(1e-3)
    assert paper.lr_at(1e-3, 14000) == pytest.approx(0.9e-3)


def test_cosine_schedule():
    opt = tse.optim.SGD([param([1.0])], lr=1.0)
    s = tse.optim.CosineSchedule(opt, total_steps=10, warmup_steps=2, min_lr=0.1)
    got = lrs(opt, s, 13)
    want = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (k - 2) / 8))) for k in range(2, 13)]
    assert got == pytest.approx(want, rel=1e-14)
    assert got[6] == pytest.approx(0.55)


def test_reduce_lr_on_plateau():
    opt = tse.optim.SGD([param([1.0])], lr=1.0)
    s = tse.optim.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.1, cooldown=1, min_lr=0.1)
    got = []
    for k in range(20):
        s.step(10.0 if k == 0 else tse.tensor([9.5]))  # a one-element Tensor works as the metric
        got.append(opt.get_lr())
    assert got == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125, 0.125, 0.125,
                   0.1, 0.1, 0.1, 0.1, 0.1]
    assert s.best == 10.0
    with pytest.raises(ValueError, match="step\\(metric\\)"):
        tse.optim.LRScheduler.step(s)
    opt.set_lr(1.0)
    mx = tse.optim.ReduceLROnPlateau(opt, mode="max", patience=0, min_lr=0.0)  # CLAPSep's factor 0.3
    for m in (1.0, 2.0, 2.0 * (1 + 0.5e-4)):
        mx.step(m)
    assert opt.get_lr() == pytest.approx(0.3)


def test_clip_grad_norm_and_value():
    a, b, c = param([0.0, 0.0]), param([0.0]), param([0.0])
    ga, gb = np.array([3.0, -4.0]), np.array([12.0])

    def reset():
        set_grad(a, ga)
        set_grad(b, gb)

    reset()
    assert tse.optim.clip_grad_norm_([a, b, c], 6.5) == pytest.approx(13.0, rel=1e-15)
    coef = 6.5 / (13 + 1e-6)
    np.testing.assert_array_equal(a.grad.numpy(), ga * coef)
    reset()
    assert tse.optim.clip_grad_norm_([a, b], 100.0) == pytest.approx(13.0)
    np.testing.assert_array_equal(a.grad.numpy(), ga)
    for norm_type in (float("inf"), "inf"):
        reset()
        assert tse.optim.clip_grad_norm_([a, b], 6.0, norm_type=norm_type) == 12.0
    reset()
    want = np.linalg.norm(np.concatenate([ga, gb]), 3)
    assert tse.optim.clip_grad_norm_(iter([a, b]), 100.0, 3.0) == pytest.approx(want, rel=1e-14)
    set_grad(b, np.array([np.nan]))
    with pytest.raises(ValueError, match="nan"):
        tse.optim.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(a.grad.numpy(), ga)
    set_grad(a, np.array([-3.0, 0.5]))
    tse.optim.clip_grad_value_(a, 1.0)
    np.testing.assert_array_equal(a.grad.numpy(), [-1.0, 0.5])
    big = param(np.zeros(100003, np.float32), np.float32)
    g = grads(0, (100003,), 7, np.float32)
    set_grad(big, g)
    assert tse.optim.clip_grad_norm_([big], 1e9) == pytest.approx(np.linalg.norm(g.astype(np.float64)), rel=1e-13)


def _run(opt, sched, ps, start, n):
    for s in range(start, start + n):
        for i, p in enumerate(ps):
            if i == 1 and s % 3 == 0:
                p.grad = None
            else:
                set_grad(p, grads(s, tuple(p.shape), i, np.float32))
        opt.step()
        sched.step()


@pytest.mark.parametrize("kind", ["adamw", "sgd"])
def test_state_dict_round_trip_is_bit_identical(kind, tmp_path):
    def make(ps):
        if kind == "adamw":
            opt = tse.optim.AdamW([{"params": [ps[0]], "lr": 0.01, "amsgrad": True}, {"params": [ps[1]]}],
                                  lr=0.003, weight_decay=0.05)
            return opt, tse.optim.WarmupHoldDecay(opt, 3, 1, 0.7, 2)
        opt = tse.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
        return opt, tse.optim.CosineSchedule(opt, 20, 2, 0.001)

    init = [np.cos(np.arange(12.0)).reshape(3, 4).astype(np.float32), np.sin(np.arange(5.0)).astype(np.float32)]
    ps = [param(x, np.float32) for x in init]
    opt, sched = make(ps)
    _run(opt, sched, ps, 0, 5)
    state = opt.state_dict()
    tse.io.save_safetensors(tmp_path / "opt.safetensors", state["tensors"])
    (tmp_path / "opt.json").write_text(state["json"])
    sched_state = sched.state_dict()
    saved = [p.detach().numpy().copy() for p in ps]
    _run(opt, sched, ps, 5, 6)

    ps2 = [param(x, np.float32) for x in saved]
    opt2, sched2 = make(ps2)
    opt2.load_state_dict({"tensors": tse.io.load_safetensors(tmp_path / "opt.safetensors"),
                          "json": (tmp_path / "opt.json").read_text()})
    sched2.load_state_dict(sched_state)
    _run(opt2, sched2, ps2, 5, 6)
    for p, q in zip(ps, ps2):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["json"] == s2["json"]
    for k in s1["tensors"]:
        np.testing.assert_array_equal(s1["tensors"][k].numpy(), s2["tensors"][k].numpy())


def test_load_state_dict_errors_name_the_difference():
    ps = [param(np.ones((3, 4)), np.float32), param(np.ones(5), np.float32)]
    opt = tse.optim.AdamW(ps)
    for p in ps:
        set_grad(p, np.ones(tuple(p.shape), np.float32))
    opt.step()
    st = opt.state_dict()
    with pytest.raises(ValueError, match="AdamW"):
        tse.optim.SGD([param(np.ones((3, 4)), np.float32), param(np.ones(5), np.float32)], lr=0.1).load_state_dict(st)
    with pytest.raises(ValueError, match="state.0.exp_avg"):
        tse.optim.AdamW([param(np.ones((4, 3)), np.float32), param(np.ones(5), np.float32)]).load_state_dict(st)
    with pytest.raises(ValueError, match="wrong shape or dtype"):
        tse.optim.AdamW([param(np.ones((3, 4))), param(np.ones(5))]).load_state_dict(st)
    with pytest.raises(ValueError, match="2 parameters, this optimiser's has 1"):
        tse.optim.AdamW([param(np.ones((3, 4)), np.float32)]).load_state_dict(st)
    bad = dict(st["tensors"])
    del bad["state.1.exp_avg_sq"]
    with pytest.raises(ValueError, match="missing: state.1.exp_avg_sq"):
        tse.optim.AdamW([param(np.ones((3, 4)), np.float32), param(np.ones(5), np.float32)]).load_state_dict(
            {"tensors": bad, "json": st["json"]})
    with pytest.raises(ValueError, match="'tensors' and 'json'"):
        opt.load_state_dict({"json": st["json"]})


def test_bad_arguments():
    p = param([1.0])
    with pytest.raises(ValueError, match="'lr'"):
        tse.optim.AdamW([p], lr=-1.0)
    with pytest.raises(ValueError, match="'beta1'"):
        tse.optim.AdamW([p], betas=(1.0, 0.999))
    with pytest.raises(ValueError, match="'beta2'"):
        tse.optim.AdamW([p], betas=(0.9, -0.5))
    with pytest.raises(ValueError, match="'nesterov'"):
        tse.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="unknown option 'momentum'"):
        tse.optim.AdamW([{"params": [p], "momentum": 0.9}])
    with pytest.raises(ValueError, match="empty parameter list"):
        tse.optim.AdamW([])
    with pytest.raises(TypeError, match="tse.Tensor"):
        tse.optim.AdamW([np.ones(3)])
    with pytest.raises(ValueError, match="more than one place"):
        tse.optim.AdamW([{"params": [p]}, {"params": [p]}])
    opt = tse.optim.AdamW([p])
    with pytest.raises(ValueError, match="'lr'"):
        opt.set_lr(-0.1)
    with pytest.raises(ValueError, match="'decay_every'"):
        tse.optim.WarmupHoldDecay(opt, decay_every=0)
    with pytest.raises(ValueError, match="'warmup_steps'"):
        tse.optim.CosineSchedule(opt, 10, warmup_steps=10)
    with pytest.raises(ValueError, match="'mode'"):
        tse.optim.ReduceLROnPlateau(opt, mode="lowest")
    with pytest.raises(ValueError, match="'factor'"):
        tse.optim.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="'norm_type'"):
        tse.optim.clip_grad_norm_([p], 1.0, norm_type="fro")


def test_adamw_fits_least_squares():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((64, 8))
    x_true = rng.standard_normal(8)
    b = A @ x_true
    At, bt = tse.from_numpy(A), tse.from_numpy(b)
    w = tse.from_numpy(np.zeros(8)).requires_grad_()
    opt = tse.optim.AdamW([w], lr=0.05, weight_decay=0.0)

    def loss():
        return ((At @ w - bt) ** 2).mean()

    first = loss().item()
    for _ in range(500):
        opt.zero_grad()
        l = loss()
        l.backward()
        opt.step()
    last = loss().item()
    assert last < first * 1e-4, (first, last)
    np.testing.assert_allclose(w.detach().numpy(), x_true, atol=1e-2)
