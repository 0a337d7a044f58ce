"""tse.nn modules and tse.models.ConformerTSE from Python: PyTorch-style names and state dicts,
strict-load errors, numerics vs numpy, the ESPnet golden Conformer layer, bad inputs."""

import numpy as np
import pytest

import tse
from golden import load, rel_to_peak


def test_linear_matches_numpy_and_names(rng):
    tse.manual_seed(0)
    lin = tse.nn.Linear(5, 3)
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    assert lin.weight.shape == (3, 5) and lin.weight.requires_grad
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = lin(tse.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(y, x @ lin.weight.detach().numpy().T + lin.bias.detach().numpy(), rtol=1e-5, atol=1e-6)
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(lin.weight.detach().numpy()) <= bound)
    assert "Linear(in_features=5, out_features=3, bias=True)" in repr(lin)


def test_state_dict_round_trip_and_strict_errors():
    tse.manual_seed(1)
    a = tse.nn.ConformerLayer(d_model=16, n_head=2, ffn_dim=32, conv_kernel=5, conv_norm_groups=4)
    tse.manual_seed(2)
    b = tse.nn.ConformerLayer(d_model=16, n_head=2, ffn_dim=32, conv_kernel=5, conv_norm_groups=4)
    sd = a.state_dict()
    assert list(sd)[:3] == ["self_attn.pos_bias_u", "self_attn.pos_bias_v", "self_attn.linear_q.weight"]
    assert "conv_module.norm.weight" in sd and "norm_final.bias" in sd
    b.load_state_dict(sd)
    np.testing.assert_array_equal(b.state_dict()["feed_forward.w_1.weight"].detach().numpy(), sd["feed_forward.w_1.weight"].detach().numpy())

    bad = dict(sd)
    del bad["norm_ff.bias"]
    bad["extra.weight"] = tse.zeros(2)
    bad["norm_ff.weight"] = tse.zeros(3)
    with pytest.raises(ValueError) as e:
        b.load_state_dict(bad)
    msg = str(e.value)
    assert "missing keys" in msg and "norm_ff.bias" in msg
    assert "unexpected keys" in msg and "extra.weight" in msg
    assert "size mismatch" in msg and "norm_ff.weight" in msg
    bad["norm_ff.weight"] = sd["norm_ff.weight"]
    result = b.load_state_dict(bad, strict=False)
    assert result.missing_keys == ["norm_ff.bias"] and result.unexpected_keys == ["extra.weight"]


def test_modes_dtype_and_zero_grad():
    m = tse.nn.ConformerLayer(d_model=8, n_head=2, ffn_dim=16, conv_kernel=3, conv_norm_groups=2)
    assert m.training
    assert m.eval() is m and not m.training
    assert not m.get_submodule("conv_module.norm").training
    m.train()
    x = tse.randn(1, 6, 8)
    pos = tse.nn.RelPositionalEncoding(8).table(6)
    m(x, pos).sum().backward()
    assert m.get_submodule("self_attn.linear_q").weight.grad is not None
    m.zero_grad()
    assert m.get_submodule("self_attn.linear_q").weight.grad is None
    m.double()
    assert all(p.dtype == tse.float64 for p in m.parameters())
    names = [n for n, _ in m.named_modules()]
    assert names[0] == "" and "conv_module.depthwise_conv" in names
    assert isinstance(m.get_submodule("conv_module"), tse.nn.ConvolutionModule)


def test_golden_conformer_layer_through_python():
    g, meta = load("conformer/conformer_layer_gn.safetensors")
    layer = tse.nn.ConformerLayer(d_model=64, n_head=4, ffn_dim=256, conv_kernel=33, dtype=tse.float64)
    params = {k: tse.tensor(v) for k, v in g.items()
              if not k.startswith(("input.", "output", "grad", "const."))}
    layer.load_state_dict(params)
    layer.eval()
    x = tse.from_numpy(g["input.x"].astype(np.float64))
    pos = tse.from_numpy(g["input.pos_emb"].astype(np.float64))
    assert rel_to_peak(layer(x, pos).detach().numpy(), g["output.out"]) <= 1e-10


def test_conformer_tse_paper_size_and_config():
    model = tse.models.ConformerTSE()
    assert model.num_parameters() == 32_004_353
    assert model.config["num_layers"] == 16 and model.config["conv_norm"] == "group_norm"
    small = tse.models.ConformerTSE(num_layers=2, d_model=32, num_heads=2, ffn_dim=64, query_dim=8)
    assert small.config["d_model"] == 32
    assert len(small.encoders) == 2 and isinstance(small.encoders[1], tse.nn.ConformerLayer)
    with pytest.raises(ValueError, match='unknown key "layers"'):
        tse.models.ConformerTSE(layers=3)
    with pytest.raises(ValueError, match="conv_kernel must be odd"):
        tse.models.ConformerTSE(conv_kernel=32)
    meta = small.metadata()
    assert meta["model_type"] == "ConformerTSE" and meta["sample_rate"] == "32000"


def test_conformer_tse_forward_separate_and_bad_inputs(rng):
    tse.manual_seed(3)
    model = tse.models.ConformerTSE(n_fft=64, hop_length=32, num_layers=1, d_model=16, num_heads=2, ffn_dim=32,
                                    conv_kernel=5, conv_norm_groups=4, query_dim=6)
    mix = tse.from_numpy(rng.standard_normal((2, 1000)).astype(np.float32))
    q = tse.from_numpy(rng.standard_normal((2, 6)).astype(np.float32))
    y = model(mix, q)
    assert y.shape == (2, 1000)
    one = model.separate(mix[0], q[0])
    assert one.shape == (1000,)
    model.eval()
    np.testing.assert_allclose(one.detach().numpy(), model(mix, q)[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="empty audio"):
        model(tse.zeros(1, 0), q[:1])
    with pytest.raises(ValueError, match="NaN or Inf"):
        model(tse.full((1, 1000), float("nan")), q[:1])
    with pytest.raises(ValueError, match=r"query must be \(B, 6\)"):
        model(mix, tse.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        model(tse.zeros(1000), q)


def test_label_query_encoder():
    enc = tse.models.LabelQueryEncoder(["cat", "piano"], dim=16, seed=3)
    e = enc.encode_text("piano")
    assert e.shape == (16,)
    np.testing.assert_allclose(np.linalg.norm(e.detach().numpy()), 1.0, rtol=1e-6)
    both = enc.encode_text(["cat", "piano"])
    np.testing.assert_array_equal(both[1].detach().numpy(), e.detach().numpy())
    with pytest.raises(ValueError, match='unknown label "dog"'):
        enc.encode_text("dog")
    assert enc.vocabulary == ["cat", "piano"] and enc.embedding_dim == 16


def test_loss_modules(rng):
    ref = tse.from_numpy(rng.standard_normal((2, 400)).astype(np.float32))
    est = (ref + 0.3 * tse.randn(2, 400)).requires_grad_()
    loss = tse.nn.NegSISDR()(est, ref)
    np.testing.assert_allclose(loss.item(), -tse.metrics.si_sdr(est, ref).mean().item(), rtol=1e-6)
    loss.backward()
    assert est.grad is not None
    np.testing.assert_allclose(tse.nn.CLAPSepLoss()(est, ref).item(), tse.metrics.clapsep_loss(est, ref).item())


def test_conformer_tse_save_and_load(tmp_path):
    tse.manual_seed(5)
    model = tse.models.ConformerTSE(n_fft=64, hop_length=32, num_layers=1, d_model=16, num_heads=2, ffn_dim=32,
                                    conv_kernel=5, conv_norm_groups=4, query_dim=6)
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = tse.models.ConformerTSE.load(path)
    assert back.config == model.config
    mix, q = tse.randn(1, 800), tse.randn(1, 6)
    np.testing.assert_array_equal(back.separate(mix, q).numpy(), model.separate(mix, q).numpy())
    assert tse.io.metadata(str(path))["model_type"] == "ConformerTSE"
    tse.io.save_safetensors(str(path), model.state_dict())
    with pytest.raises(ValueError, match="model_type"):
        tse.models.ConformerTSE.load(path)
