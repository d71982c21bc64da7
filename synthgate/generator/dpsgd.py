"""DP-SGD for :class:`AutoregressiveNet`: exact per-sample clipping from one backward pass.

For a ``Linear`` layer with input ``a_i`` and output gradient ``g_i`` the per-sample weight
gradient is ``g_i a_i^T``, whose norm is ``|g_i| |a_i|`` (plus ``|g_i|`` for the bias); for an
``Embedding`` each sample touches one row, so its gradient norm is ``|g_i|``. One backward pass
to the layer outputs therefore gives every per-sample norm (the "ghost clipping" identity of
Li et al. 2022, which Opacus's ``grad_sample_mode="ghost"`` also implements), and the clipped
sum of gradients is a weighted product of the same tensors: no second backward pass, no hooks.

The mechanism is the standard one: Poisson-sampled batch, per-sample L2 clipping to
``max_grad_norm``, Gaussian noise ``noise_multiplier * max_grad_norm`` on the sum, divided by
the expected batch size. It is accounted like Opacus's DP-SGD (sample rate, steps, noise).

With a privacy unit (a person owning several rows) the sample is a unit: Poisson sampling picks units, and each
unit's gradient (the sum over its rows) is clipped as one. Its norm follows from the same tensors: for a ``Linear``
layer the unit's gradient ``sum_i g_i a_i^T`` has squared norm ``sum_ij (g_i . g_j)(a_i . a_j)``, a sum over the
pairs of rows inside the unit (:func:`per_unit_norms`, on Gram matrices of the unit's rows).
The noise comes from a torch generator seeded with OS entropy (:class:`SecureNoise`), never
from a seed or torch's global generator; the loss is computed but never returned.
"""

from __future__ import annotations

import torch

from synthgate.generator.network import AutoregressiveNet, TokenNLL, Trace, bias, weight
from synthgate.generator.noise import SecureNoise

#: Rows x learned columns of one slice of a DP-SGD batch: the traced activations of a slice take about 1 GiB
#: (8,192 rows of 30 columns; a 60-column table's whole batch of 8,192 rows peaked at 3.1 GiB).
MICRO_BATCH_CELLS = 245_760


#: Units x longest unit squared of one slice of a unit batch: each pairwise (Gram) array of a slice is at most this
#: many floats (64 MiB).
MICRO_BATCH_PAIRS = 16_777_216


def micro_batch_rows(columns: int) -> int:
    """The rows of one slice of a batch for a table of ``columns`` learned columns (at least 256)."""
    return max(256, MICRO_BATCH_CELLS // max(1, columns))


def per_sample_norms(
    model: AutoregressiveNet, tokens: torch.Tensor, weights: list[float] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], Trace, torch.Tensor]:
    """(per-sample gradient norms, output gradients, trace, per-sample losses) of one batch."""
    trace = model.forward_traced(tokens)
    losses = TokenNLL(reduction="none", weights=weights)(trace.logits, tokens)
    outputs = trace.embedded + trace.hidden_out + trace.logits
    grads = torch.autograd.grad(losses.sum(), outputs, allow_unused=True, materialize_grads=True)
    n_emb, n_col = len(trace.embedded), len(trace.logits)
    g_emb, g_hidden, g_logits = grads[:n_emb], grads[n_emb : n_emb + n_col], grads[n_emb + n_col :]
    # |a_i|^2 of hidden layer j is the sum of the squared norms of the embedding slots it reads (model.span(j)).
    emb_sq = torch.stack([e.detach().pow(2).sum(1) for e in trace.embedded], dim=1).cumsum(dim=1)
    norm_sq = torch.stack([g.pow(2).sum(1) for g in g_emb]).sum(0)
    for j in range(n_col):
        if j in model.marginal:  # frozen: its loss reaches only its bias, which never trains
            continue
        lo, hi = model.span(j)
        window_sq = emb_sq[:, hi - 1] - (emb_sq[:, lo - 1] if lo > 0 else 0.0)
        norm_sq = norm_sq + g_hidden[j].pow(2).sum(1) * (window_sq + 1.0)
        norm_sq = norm_sq + g_logits[j].pow(2).sum(1) * (trace.head_in[j].detach().pow(2).sum(1) + 1.0)
    return norm_sq.sqrt(), list(grads), trace, losses.detach()


def per_unit_norms(
    model: AutoregressiveNet, tokens: torch.Tensor, sizes: torch.Tensor, weights: list[float] | None = None
) -> tuple[torch.Tensor, list[torch.Tensor], Trace, torch.Tensor]:
    """(gradient norm of each unit, output gradients, trace, per-row losses) of a batch whose rows come unit by unit:
    the first ``sizes[0]`` rows are the first unit's, and so on. A unit's gradient is the sum of its rows'."""
    trace = model.forward_traced(tokens)
    losses = TokenNLL(reduction="none", weights=weights)(trace.logits, tokens)
    outputs = trace.embedded + trace.hidden_out + trace.logits
    grads = torch.autograd.grad(losses.sum(), outputs, allow_unused=True, materialize_grads=True)
    n_emb, n_col = len(trace.embedded), len(trace.logits)
    pairs = _UnitPairs(sizes)
    norm_sq = torch.zeros(len(sizes), device=tokens.device)
    tables = [model.start, *model.embeddings]
    for table, index, g in zip(tables, trace.indices, grads[:n_emb], strict=True):
        norm_sq += pairs.embedding_norm_sq(g, index, weight(table).shape[0])
    for j in range(n_col):
        if j in model.marginal:  # frozen
            continue
        norm_sq += pairs.linear_norm_sq(grads[n_emb + j], model.context_of(j, trace.context))
        norm_sq += pairs.linear_norm_sq(grads[n_emb + n_col + j], trace.head_in[j])
    return norm_sq.clamp(min=0.0).sqrt(), list(grads), trace, losses.detach()


class _UnitPairs:
    """The rows of each unit of a batch laid out unit by unit, as a padded units x longest array; each layer's
    per-unit squared gradient norm from it, whichever of two ways costs less: over the pairs of rows inside a unit
    (Gram matrices, longest^2 x width: short units), or from the unit's gradient itself (longest x out x in: long
    units)."""

    def __init__(self, sizes: torch.Tensor) -> None:
        self.longest = int(sizes.max()) if sizes.numel() else 0
        starts = torch.cumsum(sizes, 0) - sizes
        offsets = torch.arange(self.longest, device=sizes.device)
        self.mask = offsets.unsqueeze(0) < sizes.unsqueeze(1)  # units x longest
        self.rows = torch.where(self.mask, starts.unsqueeze(1) + offsets, 0)

    def padded(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row values (rows x d) as units x longest x d, zero where a unit has fewer rows."""
        return x.detach()[self.rows] * self.mask.unsqueeze(2)

    def linear_norm_sq(self, g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Squared norm of each unit's gradient of a ``Linear`` layer (weight and bias) with output gradients ``g``
        and inputs ``a``."""
        gp, ap = self.padded(g), self.padded(a)
        out, width = gp.shape[2], ap.shape[2]
        if self.longest * (out + width) <= out * width:  # pairs: sum_ij (g_i . g_j)(a_i . a_j + 1)
            return (gp @ gp.transpose(1, 2) * (ap @ ap.transpose(1, 2) + 1.0)).sum(dim=(1, 2))
        weight_grad = gp.transpose(1, 2) @ ap  # units x out x in
        return weight_grad.pow(2).sum(dim=(1, 2)) + gp.sum(1).pow(2).sum(1)

    def embedding_norm_sq(self, g: torch.Tensor, index: torch.Tensor, rows: int) -> torch.Tensor:
        """Squared norm of each unit's gradient of an ``Embedding`` of ``rows`` rows: rows ``index`` looked up,
        output gradients ``g`` (two rows of a unit that look up the same embedding row add up)."""
        gp, ip = self.padded(g), index[self.rows]
        if self.longest <= rows:  # pairs: sum_ij [index_i == index_j] (g_i . g_j)
            same = (ip.unsqueeze(2) == ip.unsqueeze(1)).to(gp.dtype)
            return (gp @ gp.transpose(1, 2) * same).sum(dim=(1, 2))
        table_grad = torch.zeros(gp.shape[0], rows, gp.shape[2], device=gp.device, dtype=gp.dtype)
        table_grad.scatter_add_(1, ip.unsqueeze(2).expand_as(gp), gp)  # units x rows x d
        return table_grad.pow(2).sum(dim=(1, 2))


def clipped_gradient_sum(
    model: AutoregressiveNet,
    tokens: torch.Tensor,
    max_grad_norm: float,
    weights: list[float] | None = None,
    sizes: torch.Tensor | None = None,
    full_weight_rows: int = 1,
) -> tuple[dict[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Sum over the batch of per-sample gradients clipped to ``max_grad_norm``; and the per-row losses.

    With ``sizes`` (rows of each unit, the batch laid out unit by unit) a sample is a unit: each unit's gradient, the
    sum of its rows', is clipped as one, to ``max_grad_norm`` times ``min(rows, full_weight_rows) / full_weight_rows``
    (:func:`unit_clip_norms`)."""
    if sizes is None:
        norms, grads, trace, losses = per_sample_norms(model, tokens, weights)
        scale = (max_grad_norm / (norms + 1e-6)).clamp(max=1.0).unsqueeze(1)
    else:
        unit_norms, grads, trace, losses = per_unit_norms(model, tokens, sizes, weights)
        unit_scale = (unit_clip_norms(sizes, max_grad_norm, full_weight_rows) / (unit_norms + 1e-6)).clamp(max=1.0)
        scale = torch.repeat_interleave(unit_scale, sizes).unsqueeze(1)
    n_emb, n_col = len(trace.embedded), len(trace.logits)
    out: dict[torch.Tensor, torch.Tensor] = {}
    tables = [model.start, *model.embeddings]
    frozen = model.frozen_parameters()
    for table, index, g in zip(tables, trace.indices, grads[:n_emb], strict=True):
        if weight(table) not in frozen:  # read by no head that learns
            out[weight(table)] = torch.zeros_like(weight(table)).index_add_(0, index, g * scale)
    for j in range(n_col):
        if j in model.marginal:  # frozen
            continue
        g_hidden = grads[n_emb + j] * scale
        g_logits = grads[n_emb + n_col + j] * scale
        out[bias(model.heads[j])] = g_logits.sum(0)
        out[weight(model.hidden[j])] = g_hidden.T @ model.context_of(j, trace.context)
        out[bias(model.hidden[j])] = g_hidden.sum(0)
        out[weight(model.heads[j])] = g_logits.T @ trace.head_in[j].detach()
    return out, losses


def unit_clip_norms(sizes: torch.Tensor, max_grad_norm: float, full_weight_rows: int) -> torch.Tensor:
    """Each unit's clipping norm: ``max_grad_norm`` for a unit of ``full_weight_rows`` rows or more, proportionally
    less for a smaller one.

    Clipped to one norm, every unit weighs the same in the model whatever its rows: a table of flights is then learned
    as if each aircraft flew once (carriers whose aircraft fly most come out rare). Norms in proportion to the rows,
    up to ``full_weight_rows``, keep the rows' weights up to there. Every unit still moves the sum by at most
    ``max_grad_norm``, the noise's scale: the guarantee is unchanged."""
    return max_grad_norm * (sizes.to(torch.float32) / max(full_weight_rows, 1)).clamp(max=1.0)


class DPSGD:
    """One DP-SGD step at a time on a Poisson-sampled batch, with any torch optimizer.

    The noise generator is made here from OS entropy (:meth:`SecureNoise.torch_generator`) on the
    model's device; there is no way to pass a seeded one.
    """

    def __init__(
        self,
        model: AutoregressiveNet,
        optimizer: torch.optim.Optimizer,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        weights: list[float] | None = None,
        full_weight_rows: int = 1,
    ) -> None:
        self.model = model
        self.full_weight_rows = full_weight_rows  # with units: rows up to which a unit's weight grows with its rows
        self.optimizer = optimizer
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.expected_batch_size = expected_batch_size
        self.weights = weights
        device = next(model.parameters()).device
        self._generator = SecureNoise.torch_generator(device)

    def step(self, batch: torch.Tensor, sizes: torch.Tensor | None = None) -> None:
        """Clip, noise, average and apply. Returns nothing: the loss on real rows is not DP, so it never leaves.

        ``sizes``: with a privacy unit, the rows of each sampled unit (``batch`` laid out unit by unit); each unit's
        gradient is clipped as one. The clipped gradients are summed over slices of the batch (:func:`micro_batch_rows`;
        whole units), so memory stays bounded on a wide table; the noise goes once on the whole batch's sum, as
        without slicing."""
        rows = micro_batch_rows(len(self.model.cardinalities))
        # on the batch's device; shortest units first: a slice pads its units to its longest, so alike ones go together
        if sizes is not None:
            sizes = sizes.to(batch.device)
            order = torch.argsort(sizes, stable=True)
            batch, sizes = batch[unit_rows(torch.cumsum(sizes, 0)[order] - sizes[order], sizes[order])], sizes[order]
        sums: dict[torch.Tensor, torch.Tensor] = {}
        for chunk, chunk_sizes in _slices(batch, sizes, rows):
            part, _ = clipped_gradient_sum(
                self.model, chunk, self.max_grad_norm, self.weights, chunk_sizes, self.full_weight_rows
            )
            for param, value in part.items():
                sums[param] = sums[param] + value if param in sums else value
        frozen = self.model.frozen_parameters()
        trained = [param for param in self.model.parameters() if param not in frozen]
        for param in self.model.parameters():
            if param in frozen:  # never trained: no gradient, no noise, no update
                param.grad = None
        # the noise of every trained parameter in one draw, each gradient a view of its own stretch of it: a step of a
        # 15-column table trains about 75 tensors, which a GPU then noises in one kernel, not 75
        numels = [param.numel() for param in trained]
        std = self.noise_multiplier * self.max_grad_norm
        dtype = trained[0].dtype if trained else torch.float32
        noise = torch.normal(
            0.0, std, (sum(numels),), generator=self._generator, device=self._generator.device, dtype=dtype
        )
        grads = [part.view_as(param) for param, part in zip(trained, noise.split(numels), strict=True)]
        summed = [(grad, sums[param]) for grad, param in zip(grads, trained, strict=True) if param in sums]
        if summed:
            torch._foreach_add_([grad for grad, _ in summed], [total for _, total in summed])
        noise.div_(self.expected_batch_size)
        for param, grad in zip(trained, grads, strict=True):
            param.grad = grad
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def unit_rows(starts: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Row positions of the units that start at ``starts`` with ``sizes`` rows, unit by unit."""
    first = torch.repeat_interleave(starts, sizes)
    within = torch.arange(int(sizes.sum()), device=sizes.device)
    return first + within - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes, sizes)


def _slices(
    batch: torch.Tensor, sizes: torch.Tensor | None, rows: int
) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Slices of at most ``rows`` rows and, with units, at most :data:`MICRO_BATCH_PAIRS` units x longest squared
    (whole units: a unit too long for either is a slice of its own); one empty slice for an empty batch."""
    if sizes is None:
        return [(chunk, None) for chunk in batch.split(rows)] or [(batch, None)]
    if sizes.numel() == 0:
        return [(batch, None)]
    ends = torch.cumsum(sizes, 0).tolist()
    lengths = sizes.tolist()
    out: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    first_unit, first_row, longest = 0, 0, 0
    for unit, end in enumerate(ends):
        last = unit == len(ends) - 1
        longest = max(longest, 0 if last else lengths[unit], 0 if last else lengths[unit + 1])
        if last or ends[unit + 1] - first_row > rows or (unit + 2 - first_unit) * longest**2 > MICRO_BATCH_PAIRS:
            out.append((batch[first_row:end], sizes[first_unit : unit + 1]))
            first_unit, first_row, longest = unit + 1, end, 0
    return out
