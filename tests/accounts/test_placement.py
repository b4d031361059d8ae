"""The placement rule on its own (shared.policies.placement), with the catalogue's facts."""
from __future__ import annotations

from shared.catalogue import load_catalogue
from shared.policies.accounts import Account
from shared.policies.placement import CAPACITY, NO_ACCOUNT, can_train, plan

MAIN = Account("aoai-main", "https://main.x", "s", "rg", default=True)
SWC = Account("aoai-swc", "https://swc.x", "s", "rg", region="swedencentral", default=True)
EUS2 = Account("aoai-eus2", "https://eus2.x", "s", "rg", region="eastus2")
NCUS = Account("aoai-ncus", "https://ncus.x", "s", "rg", region="northcentralus", training_types=("Standard",))


def info(name="gpt-4o-mini-2024-07-18"):
    return load_catalogue().resolve(name)


def _plan(pool, jobs, used=None, home=None):
    return plan(pool, jobs, used or {}, lambda j: info(j.get("base_model", "gpt-4o-mini-2024-07-18")),
                lambda j: home)


def test_a_pool_of_one_without_a_region_takes_every_job_until_azure_is_full():
    jobs = [{"id": f"j{i}", "training_type": "Standard"} for i in range(CAPACITY + 2)]
    placed = _plan((MAIN,), jobs)
    assert [placed[f"j{i}"].account for i in range(CAPACITY)] == [MAIN] * CAPACITY
    assert placed["j0"].reason == "aoai-main: the only account"
    assert placed[f"j{CAPACITY}"].account is None and "23 of 23 places taken" in placed[f"j{CAPACITY}"].reason


def test_standard_training_only_in_the_models_regions_global_anywhere_the_account_offers_it():
    assert can_train(SWC, info(), "Standard")[0]
    ok, why = can_train(EUS2, info(), "Standard")
    assert not ok and why == "aoai-eus2 (eastus2): gpt-4o-mini-2024-07-18 has Standard training only in " \
                             "northcentralus, swedencentral"
    assert can_train(EUS2, info(), "GlobalStandard")[0]
    ok, why = can_train(NCUS, info(), "GlobalStandard")
    assert not ok and "does not offer GlobalStandard training" in why
    ok, why = can_train(SWC, info("gpt-4-0613"), "GlobalStandard")
    assert not ok and why == "gpt-4-0613 does not train as GlobalStandard"


def test_the_most_room_wins_and_a_placed_job_keeps_its_account():
    pool = (SWC, EUS2, NCUS)
    placed = _plan(pool, [{"id": "a", "training_type": "Standard"}, {"id": "b", "training_type": "Standard"}],
                   used={"aoai-swc": 5, "aoai-ncus": 2})
    assert placed["a"].account == NCUS and placed["b"].account == NCUS  # 21 and 20 left, against 18
    kept = _plan(pool, [{"id": "a", "training_type": "Standard", "account": "aoai-swc",
                         "placement_reason": "chosen before"}], used={"aoai-swc": 5})
    assert kept["a"].account == SWC and kept["a"].reason == "chosen before"


def test_continuous_fine_tuning_waits_for_its_home_rather_than_moving():
    placed = _plan((SWC, NCUS), [{"id": "c", "training_type": "Standard",
                                  "base_model": "gpt-4o-mini-2024-07-18.ft-0123456789abcdef0123456789abcdef"}],
                   used={"aoai-ncus": CAPACITY}, home=NCUS)
    assert placed["c"].account is None
    assert placed["c"].reason.startswith("waiting: continuous fine-tuning runs where its base model is")


def test_no_account_that_can_train_it_says_why_for_each():
    eus2_global = Account("aoai-g", "https://g.x", "s", "rg", region="eastus2", training_types=("GlobalStandard",))
    placed = _plan((EUS2, eus2_global), [{"id": "x", "training_type": "Standard", "base_model": "gpt-4-0613"}])
    assert placed["x"].account is None and placed["x"].reason.startswith(NO_ACCOUNT)
    assert "aoai-eus2 (eastus2): gpt-4-0613 has Standard training only in northcentralus, swedencentral" \
        in placed["x"].reason
    assert "aoai-g (eastus2) does not offer Standard training" in placed["x"].reason
    # northcentralus trains it: placed there.
    assert _plan((EUS2, NCUS), [{"id": "y", "training_type": "Standard", "base_model": "gpt-4-0613"}])["y"].account \
        == NCUS


def test_rows_written_before_the_pool_are_the_default_accounts_and_a_removed_account_is_not_guessed():
    import pytest

    from shared.policies.accounts import account_of

    pool = (SWC, EUS2)
    assert account_of({"status": "running"}, pool) is SWC          # no account field: written before the pool
    assert account_of({"account": "AOAI-EUS2"}, pool) is EUS2        # names are case-insensitive in Azure
    with pytest.raises(KeyError, match="'aoai-gone' is not in the pool"):
        account_of({"account": "aoai-gone"}, pool)
