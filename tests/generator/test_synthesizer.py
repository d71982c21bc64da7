import numpy as np
import pandas as pd
import pytest
import torch

from synthgate.errors import PrivacyBudgetError
from synthgate.generator import DPSynthesizer
from synthgate.spec import ColumnPolicy, PrivacyBudget, Training
from tests.conftest import PEOPLE_COLUMNS

COLUMNS = PEOPLE_COLUMNS
POLICIES = {
    "customer_id": ColumnPolicy(policy="fake", fake="id"),
    "email": ColumnPolicy(policy="fake", fake="email"),
    "plan": ColumnPolicy(policy="categorical", categories=["basic", "plus", "premium"]),
}


def synthesizer(epsilon=4.0, **training) -> DPSynthesizer:
    params = {"epochs": 3, "seed": 3} | training
    return DPSynthesizer(COLUMNS, POLICIES, PrivacyBudget(epsilon=epsilon, delta=1e-5), Training(**params), "churned")


@pytest.fixture(scope="module")
def fitted(people) -> DPSynthesizer:
    synth = synthesizer()
    synth.fit(people)
    return synth


def test_fit_stays_inside_the_budget(fitted):
    summary = fitted.summary
    assert summary.epsilon <= 4.0
    assert summary.epsilon >= 3.8  # the budget is used, not wasted
    assert summary.accounting == "prv"
    # count + (range, bins) per numeric column + a zoom for the float and the datetime + one category
    # selection (region) + the target's categories
    assert summary.releases == 1 + 2 * 4 + 2 + 1 + 1


def test_target_is_modelled_last(fitted):
    assert fitted.learned[-1].name == "churned"
    assert {c.name for c in fitted.learned} == {"age", "income", "plan", "region", "visits", "signup", "churned"}


def test_samples_have_the_source_schema(fitted, people):
    sample = fitted.sample(5000)
    assert list(sample.columns) == list(people.columns)
    assert len(sample) == 5000
    assert sample["customer_id"].is_unique
    assert not set(sample["email"]) & set(people["email"])  # faked, never copied
    assert set(sample["plan"].dropna()) <= {"basic", "plus", "premium"}
    assert sample["churned"].dtype == "boolean"
    assert pd.api.types.is_datetime64_any_dtype(sample["signup"])
    assert sample["region"].isna().mean() < 0.2  # nulls are learned, not everywhere
    assert sample["visits"].dtype == "Int64"


def test_the_model_learns_a_dependency(fitted):
    # In the source, churn is far more frequent on the basic plan (0.35 vs 0.10).
    sample = fitted.sample(20_000)
    rate = sample.groupby("plan")["churned"].mean()
    assert rate["basic"] > rate["premium"] + 0.08


def test_seeded_sampling_repeats_and_survives_save_load(fitted, tmp_path):
    path = fitted.save(tmp_path / "gen")
    again = DPSynthesizer.load(path)
    pd.testing.assert_frame_equal(fitted.sample(500, seed=11), again.sample(500, seed=11))
    assert not fitted.sample(500, seed=11).equals(fitted.sample(500, seed=12))


def test_saved_generator_holds_no_real_value(fitted, people, tmp_path):
    text = (fitted.save(tmp_path / "gen") / "synthesizer.json").read_text()
    assert "person1@example.org" not in text
    assert "100000" not in text


def test_budget_too_small_for_training_is_refused(people):
    with pytest.raises(PrivacyBudgetError, match="too small"):
        synthesizer(epsilon=0.01, epochs=50).fit(people.head(300))


def test_noise_override_over_budget_is_refused(people):
    with pytest.raises(PrivacyBudgetError, match="over the budget"):
        synthesizer(epsilon=1.0, noise_multiplier=0.5, epochs=20).fit(people)


def test_seeds_make_training_repeatable(people):
    a, b = synthesizer(epochs=1, seed=5), synthesizer(epochs=1, seed=5)
    a.fit(people.head(1000))
    b.fit(people.head(1000))
    pd.testing.assert_frame_equal(a.sample(200), b.sample(200))
    assert np.isclose(a.summary.epsilon, b.summary.epsilon)


def test_weight_average_warms_up_then_follows_its_decay():
    from synthgate.generator.synthesizer import WeightAverage

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update()  # decay min(0.9, 2/11): the first step moves most of the way
    assert average.average[0].item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        average.update()
    average.apply()
    assert model.weight.item() == pytest.approx(1.0, abs=1e-6)
