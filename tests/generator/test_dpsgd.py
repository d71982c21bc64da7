"""The fast DP-SGD step against brute force and against Opacus's ghost clipping."""

import secrets

import pytest
import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from synthgate.generator.dpsgd import (
    DPSGD,
    clipped_gradient_sum,
    per_sample_norms,
    per_unit_norms,
    unit_clip_norms,
)
from synthgate.generator.network import AutoregressiveNet, TokenNLL
from synthgate.generator.noise import SecureNoise
from synthgate.generator.units import SIZE_EDGES, SizeHistogram

CARDS = [5, 3, 7, 2]


def model_and_batch(seed=0, n=24, window=64):
    torch.manual_seed(seed)
    model = AutoregressiveNet(CARDS, embedding_dim=4, hidden_dim=8, window=window)
    tokens = torch.stack([torch.randint(0, c, (n,)) for c in CARDS], dim=1)
    return model, tokens


def brute_force_grads(model, tokens):
    per_sample = []
    for i in range(tokens.shape[0]):
        model.zero_grad()
        TokenNLL(reduction="sum")(model(tokens[i : i + 1]), tokens[i : i + 1]).backward()
        per_sample.append({p: torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()})
    return per_sample


@pytest.mark.parametrize("window", [64, 2])  # every earlier column; or the last two slots (the target reads all)
def test_per_sample_norms_match_brute_force(window):
    model, tokens = model_and_batch(window=window)
    norms, *_ = per_sample_norms(model, tokens)
    for i, grads in enumerate(brute_force_grads(model, tokens)):
        exact = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
        assert torch.isclose(norms[i], exact, rtol=1e-4), i


@pytest.mark.parametrize("window", [64, 2])
def test_clipped_sum_matches_brute_force(window):
    model, tokens = model_and_batch(seed=1, window=window)
    clip = 0.5
    sums, _ = clipped_gradient_sum(model, tokens, clip)
    expected = {p: torch.zeros_like(p) for p in model.parameters()}
    for grads in brute_force_grads(model, tokens):
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        for p, g in grads.items():
            expected[p] += g * factor
    for p in model.parameters():
        assert torch.allclose(sums[p], expected[p], atol=1e-5), p.shape


def test_matches_opacus_ghost_clipping_without_noise():
    model, tokens = model_and_batch(seed=2, n=32)
    reference = AutoregressiveNet(CARDS, embedding_dim=4, hidden_dim=8)
    reference.load_state_dict(model.state_dict())

    ours = DPSGD(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.0, 0.7, expected_batch_size=32)
    ours.step(tokens)

    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(tokens), batch_size=32)
    private, private_opt, criterion, _ = PrivacyEngine().make_private(
        module=reference,
        optimizer=optimizer,
        data_loader=loader,
        criterion=TokenNLL(),
        noise_multiplier=0.0,
        max_grad_norm=0.7,
        grad_sample_mode="ghost",
        poisson_sampling=False,
    )
    private_opt.expected_batch_size = 32
    criterion(private(tokens), tokens).backward()
    private_opt.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def test_noise_has_the_calibrated_scale():
    model, tokens = model_and_batch(seed=3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    dp = DPSGD(
        model,
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=50.0,
        max_grad_norm=1.0,
        expected_batch_size=10,
    )
    steps = []
    for _ in range(20):  # 20 steps of 569 weights: the std's own error is 0.03 (one step's was 0.15)
        assert dp.step(tokens[:0]) is None  # an empty batch: the update is pure noise; no loss comes back
        steps.append(torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()]))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert abs(float(torch.cat(steps).std()) - 5.0) < 0.2  # noise_multiplier * clip / expected batch


def test_column_weights_scale_each_columns_loss():
    model = AutoregressiveNet([3, 4], 4, 8)
    tokens = torch.tensor([[0, 1], [2, 3]])
    logits = model(tokens)
    plain = TokenNLL(reduction="none")(logits, tokens)
    first_only = TokenNLL(reduction="none", weights=[1.0, 0.0])(logits, tokens)
    doubled = TokenNLL(reduction="none", weights=[1.0, 2.0])(logits, tokens)
    torch.testing.assert_close(doubled, 2 * plain - first_only)


# -- noise: same scale as Opacus, from OS entropy, never from a seed ------------------------------------

BIG = [40, 30, 50, 20, 2]  # about 25k parameters: the empirical std is within 1% of the true one


def big_model():
    torch.manual_seed(0)
    return AutoregressiveNet(BIG, embedding_dim=16, hidden_dim=64)


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def opacus_update(noise_multiplier, clip, expected_batch, batch, generator, global_seed=0):
    """One Opacus step (ghost clipping, as the opacus engine runs it) from ``big_model``'s weights: the change.

    ``global_seed`` seeds torch's global generator just before the step.
    """
    model = big_model()
    before = flat(model)
    loader = DataLoader(TensorDataset(batch), batch_size=expected_batch)
    private, optimizer, criterion, _ = PrivacyEngine().make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
        data_loader=loader,
        criterion=TokenNLL(),
        noise_multiplier=noise_multiplier,
        max_grad_norm=clip,
        grad_sample_mode="ghost",
        poisson_sampling=True,
        noise_generator=generator,
    )
    optimizer.expected_batch_size = expected_batch
    torch.manual_seed(global_seed)
    criterion(private(batch), batch).backward()
    optimizer.step()
    return flat(model) - before


def fast_update(noise_multiplier, clip, expected_batch, batch, global_seed=0):
    model = big_model()
    before = flat(model)
    dp = DPSGD(model, torch.optim.SGD(model.parameters(), lr=1.0), noise_multiplier, clip, expected_batch)
    torch.manual_seed(global_seed)
    dp.step(batch)
    return flat(model) - before


@pytest.mark.filterwarnings("ignore")
def test_fast_engine_adds_the_same_noise_scale_as_opacus():
    # One row: its clipped gradient (norm <= clip, spread over 25k coordinates) is negligible next to the noise,
    # so each update is (almost) pure noise of std noise_multiplier * clip / expected_batch in both engines.
    noise_multiplier, clip, expected_batch = 40.0, 1.5, 8
    batch = torch.tensor([[1, 2, 3, 4, 1]])
    fast = fast_update(noise_multiplier, clip, expected_batch, batch)
    reference = opacus_update(noise_multiplier, clip, expected_batch, batch, SecureNoise.torch_generator())
    expected = noise_multiplier * clip / expected_batch
    assert fast.numel() > 20_000
    assert abs(float(fast.std()) / expected - 1) < 0.02
    assert abs(float(reference.std()) / expected - 1) < 0.02
    assert abs(float(fast.std()) / float(reference.std()) - 1) < 0.03
    assert abs(float(fast.mean())) < 0.05 * expected


@pytest.mark.filterwarnings("ignore")
def test_opacus_noise_comes_from_the_noise_generator_not_the_global_seed():
    # The opacus engine passes a SecureNoise generator: Opacus 1.6 must draw every noise sample from it.
    batch = torch.tensor([[1, 2, 3, 4, 1]])
    a = opacus_update(40.0, 1.0, 8, batch, torch.Generator().manual_seed(7), global_seed=1)
    b = opacus_update(40.0, 1.0, 8, batch, torch.Generator().manual_seed(7), global_seed=2)
    c = opacus_update(40.0, 1.0, 8, batch, torch.Generator().manual_seed(8), global_seed=1)
    assert torch.equal(a, b)  # the global seed plays no part
    assert not torch.allclose(a, c)


def test_fast_engine_noise_is_fresh_os_entropy_whatever_the_global_seed(monkeypatch):
    bits = []
    real = secrets.randbits
    monkeypatch.setattr(secrets, "randbits", lambda k: bits.append(k) or real(k))
    batch = torch.tensor([[1, 2, 3, 4, 1]])
    a = fast_update(40.0, 1.0, 8, batch, global_seed=0)
    b = fast_update(40.0, 1.0, 8, batch, global_seed=0)
    assert bits == [63, 63]  # each DPSGD seeds its own noise generator from the OS
    assert not torch.allclose(a, b)
    monkeypatch.setattr(secrets, "randbits", lambda k: 12345)  # with the OS entropy fixed, the noise repeats:
    c = fast_update(40.0, 1.0, 8, batch, global_seed=1)
    d = fast_update(40.0, 1.0, 8, batch, global_seed=2)
    assert torch.equal(c, d)  # so it is the only source of the noise (the global seed plays no part)


def test_a_large_table_takes_fewer_passes_not_more_steps():
    from synthgate.generator.synthesizer import MAX_DEFAULT_STEPS, default_batch_and_epochs

    assert default_batch_and_epochs(30_000, 1.0) == (5000, 24)  # Adult-sized tables keep their plan
    batch, epochs = default_batch_and_epochs(800_000, 1.0)
    assert batch == 8192 and 2 <= epochs < 24
    assert epochs * round(800_000 / batch) <= MAX_DEFAULT_STEPS
    assert default_batch_and_epochs(50_000_000, 1.0)[1] == 1  # at least one pass


def test_a_narrow_window_reads_the_last_slots_and_the_target_reads_all():
    model, _ = model_and_batch(window=2)
    assert [model.span(j) for j in range(len(CARDS))] == [(0, 1), (0, 2), (1, 3), (0, 4)]
    assert [layer.in_features for layer in model.hidden] == [4, 8, 8, 16]


def test_slicing_a_batch_sums_the_same_clipped_gradients(monkeypatch):
    from synthgate.generator import dpsgd

    model, tokens = model_and_batch(seed=3, n=40)
    copy = AutoregressiveNet(CARDS, embedding_dim=4, hidden_dim=8)
    copy.load_state_dict(model.state_dict())
    whole = DPSGD(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.0, 0.5, expected_batch_size=40)
    whole.step(tokens)
    monkeypatch.setattr(dpsgd, "MICRO_BATCH_CELLS", 4 * 3)  # 3 rows a slice (at least 256 in real use)
    monkeypatch.setattr(dpsgd, "micro_batch_rows", lambda columns: dpsgd.MICRO_BATCH_CELLS // columns)
    sliced = DPSGD(copy, torch.optim.SGD(copy.parameters(), lr=0.1), 0.0, 0.5, expected_batch_size=40)
    sliced.step(tokens)
    for a, b in zip(model.parameters(), copy.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_the_step_cap_follows_a_batch_the_spec_sets():
    from synthgate.generator.synthesizer import MAX_DEFAULT_STEPS, default_batch_and_epochs

    batch, epochs = default_batch_and_epochs(800_000, 1.0, batch=256)
    assert batch == 256 and epochs == 1  # 3,125 steps a pass: one pass, not 24 (75,000 steps)
    batch, epochs = default_batch_and_epochs(100_000, 1.0, batch=20_000)
    assert batch == 20_000 and epochs * 5 <= MAX_DEFAULT_STEPS and epochs == 24


def brute_force_unit_grads(model, tokens, sizes):
    """Each unit's gradient: the summed loss of its rows, one backward pass per unit."""
    per_unit, start = [], 0
    for size in sizes.tolist():
        model.zero_grad()
        rows = tokens[start : start + size]
        TokenNLL(reduction="sum")(model(rows), rows).backward()
        per_unit.append({p: torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()})
        start += size
    return per_unit


@pytest.mark.parametrize("window", [64, 2])
@pytest.mark.parametrize(
    "sizes",
    [[1, 6, 2, 5, 3, 4], [2, 1, 2, 2, 1, 2, 1, 2, 2, 2, 1, 2, 1]],
    ids=["long: from each unit's gradient", "short: over pairs of rows"],
)
def test_per_unit_norms_match_brute_force(window, sizes):
    # repeated tokens inside a unit share embedding rows; long units take the unit-gradient path of every layer,
    # units of at most 2 rows the pairs' path (2 x (8 + 4) <= 8 x 4; 2 rows <= 3 embedding rows)
    model, tokens = model_and_batch(seed=3, n=sum(sizes), window=window)
    sizes = torch.tensor(sizes)
    norms, *_ = per_unit_norms(model, tokens, sizes)
    for u, grads in enumerate(brute_force_unit_grads(model, tokens, sizes)):
        exact = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
        assert torch.isclose(norms[u], exact, rtol=1e-4), u


def test_a_unit_is_clipped_as_one_and_the_slices_keep_units_whole(monkeypatch):
    model, tokens = model_and_batch(seed=4, n=21)
    sizes = torch.tensor([1, 6, 2, 5, 3, 4])
    clip = 0.5
    sums, _ = clipped_gradient_sum(model, tokens, clip, sizes=sizes)
    expected = {p: torch.zeros_like(p) for p in model.parameters()}
    for grads in brute_force_unit_grads(model, tokens, sizes):
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
        assert float(norm) > clip  # every unit is clipped: the test tells one clip per unit from one per row
        for p, g in grads.items():
            expected[p] += g * min(1.0, clip / (float(norm) + 1e-6))
    for p in model.parameters():
        assert torch.allclose(sums[p], expected[p], atol=1e-5), p.shape
    # the step on slices of whole units (at most 7 rows each) equals the step on the whole batch
    copy = AutoregressiveNet(CARDS, embedding_dim=4, hidden_dim=8)
    copy.load_state_dict(model.state_dict())
    whole = DPSGD(model, torch.optim.SGD(model.parameters(), lr=0.1), 0.0, clip, expected_batch_size=6)
    whole.step(tokens, sizes)
    from synthgate.generator import dpsgd

    monkeypatch.setattr(dpsgd, "micro_batch_rows", lambda columns: 7)
    sliced = DPSGD(copy, torch.optim.SGD(copy.parameters(), lr=0.1), 0.0, clip, expected_batch_size=6)
    sliced.step(tokens, sizes)
    for a, b in zip(model.parameters(), copy.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_smaller_unit_is_clipped_to_its_share_of_the_norm():
    # units of 1 to 6 rows, full weight from 4 rows: clipping norms 0.125, 0.5, 0.25, 0.5, 0.375, 0.5 (never above
    # the noise's scale, 0.5)
    model, tokens = model_and_batch(seed=5, n=21)
    sizes = torch.tensor([1, 6, 2, 5, 3, 4])
    clip, full = 0.5, 4
    sums, _ = clipped_gradient_sum(model, tokens, clip, sizes=sizes, full_weight_rows=full)
    expected = {p: torch.zeros_like(p) for p in model.parameters()}
    for size, grads in zip(sizes.tolist(), brute_force_unit_grads(model, tokens, sizes), strict=True):
        norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads.values())))
        bound = clip * min(size, full) / full
        assert norm > bound
        for p, g in grads.items():
            expected[p] += g * bound / (norm + 1e-6)
    for p in model.parameters():
        assert torch.allclose(sums[p], expected[p], atol=1e-5), p.shape
    assert float(unit_clip_norms(sizes, clip, full).max()) == clip


def test_the_full_weight_rows_are_the_median_rows_unit_size():
    # 100 units of 1 row and 10 of 32: 420 rows, 320 of them in units of 32 (bin 25-32)
    histogram = SizeHistogram(
        tuple(100.0 if i == 0 else 10.0 if SIZE_EDGES[i] == 32 else 0.0 for i in range(len(SIZE_EDGES))), 110.0
    )
    assert 25 <= histogram.median_row_size(64) <= 32
    assert histogram.median_row_size(4) == 1  # a bound of 4: the larger units keep 40 rows, the small ones 100


def test_a_single_tables_plan_takes_its_epsilons_epochs():
    # without a stage the plan reads epsilon itself: a round trip through rho came back a hair under 0.25, cost an epoch
    from synthgate.generator.accounting import PrivacyAccountant
    from synthgate.generator.synthesizer import DPSynthesizer
    from synthgate.schema import Column, ColumnKind
    from synthgate.spec import PrivacyBudget, Training

    synth = DPSynthesizer(
        [Column("a", ColumnKind.CATEGORICAL, "TEXT")], {}, PrivacyBudget(epsilon=0.25, delta=1e-5), Training()
    )
    plan = synth.plan(PrivacyAccountant(delta=1e-5, delta_selection=2.5e-6), 30_000, 10.0)
    assert (plan.epochs, plan.expected_batch_size) == (12, 5000)
