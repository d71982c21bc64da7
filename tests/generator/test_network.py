import torch

from synthgate.generator.network import AutoregressiveNet


def _neighbour_gap(weight: torch.Tensor) -> float:
    """Mean distance between embeddings of adjacent tokens, relative to the mean distance of any two."""
    adjacent = (weight[1:] - weight[:-1]).norm(dim=1).mean()
    return float(adjacent / torch.cdist(weight, weight).mean())


def test_ordinal_embeddings_start_smooth_and_keep_their_scale():
    torch.manual_seed(0)
    net = AutoregressiveNet([40, 40, 2], embedding_dim=16, hidden_dim=8, ordinal=[True, False, False])
    ordinal, categorical = net.embeddings[0].weight.detach(), net.embeddings[1].weight.detach()
    values = ordinal[:-1]  # the last token is NULL: not on the curve
    assert _neighbour_gap(values) < 0.15
    assert _neighbour_gap(categorical) > 0.9
    assert 0.7 < float(values.pow(2).mean()) < 1.3  # unit variance per coordinate, like the default init
    assert not torch.allclose(ordinal[-1], values[-1])


def test_tiny_ordinal_tables_keep_the_default_init():
    torch.manual_seed(0)
    net = AutoregressiveNet([3, 2], embedding_dim=4, hidden_dim=8, ordinal=[True, False])
    torch.manual_seed(0)
    plain = AutoregressiveNet([3, 2], embedding_dim=4, hidden_dim=8)
    assert torch.equal(net.embeddings[0].weight, plain.embeddings[0].weight)
