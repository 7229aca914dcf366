"""Every core in the same Lite shell: the same parameter budget, sequence == steps with state carried,
padding, and a checkpoint that rebuilds the same model from its spec."""

import pytest
import torch

from lnn.errors import ConfigError
from lnn.models import VisionLNNLite
from lnn.models.lite import CORES
from lnn.models.text import BYTE_IDS, MAX_WORDS, WORD_BYTES

TINY = dict(image_size=32, channels=(8, 8, 8), feature_size=16, instruction_dim=8,
            hidden_size=16, num_layers=2, head_size=16, scorer_size=8, solver="semi_implicit", unfolds=2)  # fmt: skip
# conf/model/lite.yaml's sizes (the 0.79M-parameter default)
DEFAULT = dict(image_size=64, hidden_size=184, tau_per="neuron", solver="semi_implicit")


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def inputs(batch=2, steps=4, size=32):
    torch.manual_seed(1)
    return torch.rand(batch, steps, 3, size, size), torch.randint(0, BYTE_IDS, (batch, steps, MAX_WORDS * WORD_BYTES))


@pytest.mark.parametrize("core", [c for c in CORES if c != "liquid"])
def test_the_same_parameter_budget_within_3_percent(core, capsys):
    budget = params(VisionLNNLite(**DEFAULT))
    model = VisionLNNLite(core=core, **DEFAULT)
    assert abs(params(model) / budget - 1) < 0.03
    line = capsys.readouterr().out
    assert f"core={core}: width {model.width}," in line and "vs liquid" in line
    assert model.spec["kwargs"]["core_width"] == model.width  # a checkpoint rebuilds this width


def test_an_explicit_width_wins_and_liquid_keeps_its_width():
    assert VisionLNNLite(core="gru", core_width=20, **TINY).width == 20
    assert VisionLNNLite(core_width=20, **TINY).liquid_cells()[0].hidden_size == 20
    assert VisionLNNLite(**TINY).width == 16 and VisionLNNLite(**TINY).spec["kwargs"]["core_width"] is None
    with pytest.raises(ConfigError, match="core_width"):
        VisionLNNLite(core="gru", core_width=0, **TINY)
    with pytest.raises(ConfigError, match="solver"):
        VisionLNNLite(core="ltc", **(TINY | {"solver": "rk4"}))


@pytest.mark.parametrize("core", CORES)
def test_step_by_step_with_state_equals_the_episode_and_padding(core):
    torch.manual_seed(0)
    model = VisionLNNLite(core=core, **TINY).double().eval()
    images, tokens = inputs()
    images = images.double()
    whole = model(images, tokens)
    assert len(whole["tau_values"]) == (2 if core == "liquid" else 0)
    assert len(whole["state"]) == (0 if core == "feedforward" else 2)
    state = model.initial_state(2)
    for t in range(images.shape[1]):
        out = model.step(images[:, t], tokens[:, t], state)
        state = out["state"]
        torch.testing.assert_close(out["action_logits"], whole["action_logits"][:, t])
        torch.testing.assert_close(out["coords"], whole["coords"][:, t])
    for a, b in zip(state, whole["state"]):
        torch.testing.assert_close(a, b)
    # sample 1 right-padded after 2 steps (dt = mask, as training does): its outputs and final state are
    # those of its 2-step episode
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    padded = model(images, tokens, dt=mask.double(), mask=mask)
    short = model(images[1:, :2], tokens[1:, :2])
    torch.testing.assert_close(padded["action_logits"][1, :2], short["action_logits"][0])
    for a, b in zip(padded["state"], short["state"]):
        torch.testing.assert_close(a[1:], b)


@pytest.mark.parametrize("core", ["cfc", "lstm"])
def test_a_checkpoint_rebuilds_the_model_from_its_spec(core, tmp_path, capsys):
    from lnn.runs import SPEC, load_policy

    model = VisionLNNLite(core=core, **(TINY | {"hidden_size": 24})).eval()
    assert "vs liquid" in capsys.readouterr().out
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, SPEC: model.spec}, tmp_path / "best.ckpt")
    loaded = load_policy(tmp_path / "best.ckpt")
    assert loaded.width == model.width and capsys.readouterr().out == ""  # the width was stored, not solved again
    images, tokens = inputs(steps=2)
    torch.testing.assert_close(loaded(images, tokens)["action_logits"], model(images, tokens)["action_logits"])


def test_with_solver_reaches_the_ltc_cells():
    model = VisionLNNLite(core="ltc", **TINY)
    other = model.with_solver("euler", 7)
    assert [(c.solver, c.unfolds) for c in other.solver_cells()] == [("euler", 7)] * 2
    assert [(c.solver, c.unfolds) for c in model.solver_cells()] == [("semi_implicit", 2)] * 2
    assert model.liquid_cells() == [] and VisionLNNLite(core="gru", **TINY).solver_cells() == []
