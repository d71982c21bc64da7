"""The fast DP-SGD step against brute force and against Opacus's ghost clipping."""

import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from synthgate.generator.dpsgd import DPSGD, clipped_gradient_sum, per_sample_norms
from synthgate.generator.network import AutoregressiveNet, TokenNLL

CARDS = [5, 3, 7, 2]


def model_and_batch(seed=0, n=24):
    torch.manual_seed(seed)
    model = AutoregressiveNet(CARDS, embedding_dim=4, hidden_dim=8)
    tokens = torch.stack([torch.randint(0, c, (n,)) for c in CARDS], dim=1)
    return model, tokens


def brute_force_grads(model, tokens):
    per_sample = []
    for i in range(tokens.shape[0]):
        model.zero_grad()
        TokenNLL(reduction="sum")(model(tokens[i : i + 1]), tokens[i : i + 1]).backward()
        per_sample.append({p: p.grad.clone() for p in model.parameters()})
    return per_sample


def test_per_sample_norms_match_brute_force():
    model, tokens = model_and_batch()
    norms, *_ = per_sample_norms(model, tokens)
    for i, grads in enumerate(brute_force_grads(model, tokens)):
        exact = torch.sqrt(sum(g.pow(2).sum() for g in grads.values()))
        assert torch.isclose(norms[i], exact, rtol=1e-4), i


def test_clipped_sum_matches_brute_force():
    model, tokens = model_and_batch(seed=1)
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
        module=reference, optimizer=optimizer, data_loader=loader, criterion=TokenNLL(),
        noise_multiplier=0.0, max_grad_norm=0.7, grad_sample_mode="ghost", poisson_sampling=False,
    )
    private_opt.expected_batch_size = 32
    criterion(private(tokens), tokens).backward()
    private_opt.step()
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_noise_has_the_calibrated_scale():
    model, tokens = model_and_batch(seed=3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    dp = DPSGD(model, torch.optim.SGD(model.parameters(), lr=1.0), noise_multiplier=50.0, max_grad_norm=1.0,
               expected_batch_size=10, generator=torch.Generator().manual_seed(0))
    dp.step(tokens[:0])  # an empty batch: the update is pure noise
    deltas = torch.cat([(p.detach() - before[n]).flatten() for n, p in model.named_parameters()])
    assert abs(float(deltas.std()) - 5.0) < 0.3  # noise_multiplier * clip / expected batch


def test_column_weights_scale_each_columns_loss():
    model = AutoregressiveNet([3, 4], 4, 8)
    tokens = torch.tensor([[0, 1], [2, 3]])
    logits = model(tokens)
    plain = TokenNLL(reduction="none")(logits, tokens)
    first_only = TokenNLL(reduction="none", weights=[1.0, 0.0])(logits, tokens)
    doubled = TokenNLL(reduction="none", weights=[1.0, 2.0])(logits, tokens)
    torch.testing.assert_close(doubled, 2 * plain - first_only)
