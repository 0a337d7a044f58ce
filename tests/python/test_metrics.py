"""tse.metrics against fast_bss_eval and mir_eval (the reference implementations) and against
hand-computed values; losses are differentiable; silent references stay finite."""

import warnings

import fast_bss_eval.numpy as fast_bss_eval  # the numpy backend (torch is not a test dependency)
import mir_eval
import numpy as np
import pytest

import tse
import tse.metrics as M


@pytest.fixture
def pair(rng):
    ref = rng.standard_normal((3, 16000))
    est = ref + 0.3 * rng.standard_normal((3, 16000)) + 0.2 * np.roll(ref, 5, axis=-1)
    return est, ref


def t(a):
    return tse.from_numpy(np.ascontiguousarray(a))


def test_sdr_bss_matches_fast_bss_eval(pair):
    est, ref = pair
    want = fast_bss_eval.sdr(ref[:, None], est[:, None]).ravel()
    got = M.sdr_bss(t(est), t(ref)).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)
    want_zm = fast_bss_eval.sdr(ref[:, None], est[:, None], zero_mean=True).ravel()
    np.testing.assert_allclose(M.sdr_bss(t(est), t(ref), zero_mean=True).numpy(), want_zm, atol=1e-6)
    want_f = fast_bss_eval.sdr(ref[:, None], est[:, None], filter_length=64, load_diag=1e-5).ravel()
    np.testing.assert_allclose(M.sdr_bss(t(est), t(ref), filter_length=64, load_diag=1e-5).numpy(), want_f, atol=1e-6)


def test_sdr_bss_is_close_to_mir_eval(pair):
    est, ref = pair
    with warnings.catch_warnings():  # mir_eval 0.8 deprecates its separation module
        warnings.simplefilter("ignore", FutureWarning)
        sdr, _, _, _ = mir_eval.separation.bss_eval_sources(ref[:1], est[:1])
    # mir_eval regularises its solve differently: agreement to a few hundredths of a dB.
    assert abs(M.sdr_bss(t(est[0]), t(ref[0])).item() - sdr[0]) < 0.05


def test_si_sdr_matches_fast_bss_eval_and_the_formula(pair):
    est, ref = pair
    want = fast_bss_eval.si_sdr(ref[:, None], est[:, None], zero_mean=False).ravel()
    np.testing.assert_allclose(M.si_sdr(t(est), t(ref)).numpy(), want, atol=1e-6)
    want_zm = fast_bss_eval.si_sdr(ref[:, None], est[:, None], zero_mean=True).ravel()
    np.testing.assert_allclose(M.si_sdr(t(est), t(ref), zero_mean=True).numpy(), want_zm, atol=1e-6)
    # The torchmetrics formula with its eps, by hand.
    eps = np.finfo(np.float64).eps
    alpha = ((est * ref).sum(-1) + eps) / ((ref * ref).sum(-1) + eps)
    tgt = alpha[:, None] * ref
    by_hand = 10 * np.log10(((tgt**2).sum(-1) + eps) / (((tgt - est) ** 2).sum(-1) + eps))
    np.testing.assert_allclose(M.si_sdr(t(est), t(ref)).numpy(), by_hand, rtol=1e-12)


def test_snr_both_conventions_by_hand(pair):
    est, ref = pair
    eps = np.finfo(np.float64).eps
    want = 10 * np.log10(((ref**2).sum(-1) + eps) / (((ref - est) ** 2).sum(-1) + eps))
    np.testing.assert_allclose(M.snr(t(est), t(ref)).numpy(), want, rtol=1e-12)
    audiosep = 10 * np.log10(np.maximum((ref**2).mean(-1), 1e-10) / np.maximum(((ref - est) ** 2).mean(-1), 1e-10))
    np.testing.assert_allclose(M.snr(t(est), t(ref), clamp=1e-10).numpy(), audiosep, rtol=1e-12)
    # 20 dB by construction.
    r = np.ones(100)
    assert M.snr(t(r + 0.1), t(r)).item() == pytest.approx(20.0, abs=1e-9)


def test_improvements_subtract_the_mixture_score(pair):
    est, ref = pair
    mix = ref + np.random.default_rng(5).standard_normal(ref.shape)
    for imp, base in [(M.snri, M.snr), (M.si_sdri, M.si_sdr), (M.sdri_bss, M.sdr_bss)]:
        want = base(t(est), t(ref)).numpy() - base(t(mix), t(ref)).numpy()
        np.testing.assert_allclose(imp(t(est), t(ref), t(mix)).numpy(), want, rtol=1e-12)


def test_silent_references_and_estimates_stay_finite():
    z = tse.zeros(2, 1000)
    x = tse.randn(2, 1000)
    for f in (M.snr, M.si_sdr, M.sdr_bss):
        for est, ref in ((x, z), (z, x), (z, z)):
            assert np.all(np.isfinite(f(est, ref).numpy())), f.__name__
    assert np.isfinite(M.snr(x, z, clamp=1e-10).numpy()).all()


def test_losses_are_differentiable_and_match_their_definitions(pair):
    est, ref = pair
    e = t(est.astype(np.float32)).requires_grad_()
    r = t(ref.astype(np.float32))
    loss = M.clapsep_loss(e, r)
    eps = 1.1920928955078125e-07
    snr = 10 * np.log10(((ref**2).sum(-1) + eps) / (((ref - est) ** 2).sum(-1) + eps))
    ez, rz = est - est.mean(-1, keepdims=True), ref - ref.mean(-1, keepdims=True)
    alpha = ((ez * rz).sum(-1) + eps) / ((rz * rz).sum(-1) + eps)
    si = 10 * np.log10((((alpha[:, None] * rz) ** 2).sum(-1) + eps) / (((alpha[:, None] * rz - ez) ** 2).sum(-1) + eps))
    assert loss.item() == pytest.approx(float(np.mean(-0.9 * snr - 0.1 * si)), rel=1e-5)
    loss.backward()
    assert e.grad is not None and np.all(np.isfinite(e.grad.numpy()))
    e64 = t(est[:, :50]).requires_grad_()
    r64 = t(ref[:, :50])
    assert tse.autograd.gradcheck(lambda a: M.si_sdr(a, r64, zero_mean=True), (e64,))
    assert tse.autograd.gradcheck(lambda a: M.snr(a, r64), (e64,))
    assert M.neg_si_sdr(t(est), t(ref)).item() == pytest.approx(-float(np.mean(M.si_sdr(t(est), t(ref)).numpy())))


def test_metric_argument_errors():
    with pytest.raises(ValueError, match="same shape"):
        M.si_sdr(tse.zeros(2, 10), tse.zeros(2, 11))
    with pytest.raises(ValueError, match="dtype"):
        M.snr(tse.zeros(10), tse.zeros(10, dtype=tse.float64))
    with pytest.raises(ValueError, match="samples"):
        M.sdr_bss(tse.zeros(0), tse.zeros(0))
    with pytest.raises(ValueError, match="filter_length"):
        M.sdr_bss(tse.zeros(10), tse.zeros(10), filter_length=0)
