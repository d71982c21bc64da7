import numpy as np
import torch

from synthgate.generator.network import AutoregressiveNet, Lift
from synthgate.generator.synthesizer import group_leaders


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


def test_a_lifted_column_takes_its_groups_first_value_at_the_lifts_weight():
    # at weight 1 every row of a group but its first takes the first's value where it is a category (below
    # ``shared``), in either chunk; rows in no group draw freely
    torch.manual_seed(0)
    net = AutoregressiveNet([5, 6], embedding_dim=4, hidden_dim=8)
    n = 600
    leaders = torch.arange(n) // 6 * 6  # groups of 6 rows, together
    leaders[-6:] = -1  # the last six rows are in no group
    lift = Lift(1.0, leaders, shared=4)
    generator = torch.Generator().manual_seed(1)
    first, second = (
        net.sample(n // 2, generator, torch.device("cpu"), lifts={1: lift.rows(start, start + n // 2)})
        for start in (0, n // 2)
    )
    drawn = torch.cat([first, second])[:, 1]
    leader_value = drawn[leaders.clamp(min=0)]
    follows = leaders >= 0
    shareable = follows & (leader_value < 4)
    assert (drawn[shareable] == leader_value[shareable]).all() and shareable.sum() > 100
    assert len(set(drawn[-6:].tolist())) > 1  # drawn freely: six draws over six tokens rarely agree
    assert len(set(drawn[follows & (leader_value >= 4)].tolist())) > 1  # a first row's RARE or NULL is not shared
    # a chunk from row 3 to 9: the group that began before it is led by its first row, the next by its own
    assert lift.rows(3, 9).leaders.tolist() == [0, 0, 0, 3, 3, 3]


def test_a_groups_rows_know_their_first_row():
    assert group_leaders(np.array([0, 0, 1, 1, 1, 7, -1, -1])).tolist() == [0, 0, 2, 2, 2, 5, -1, -1]
    assert group_leaders(np.array([], dtype=np.int64)).tolist() == []
