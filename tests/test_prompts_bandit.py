"""Prompt themes (YAML), the LinUCB prompt bandit, AdBooster personalisation and the bandit
benchmark. Everything here is weights-free and fast (numpy only)."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from staging import StagingEngine
from staging.cli import app
from staging.errors import StagingError
from staging.evaluate.bench_bandit import bench_bandit
from staging.generate.bandit import (
    REFRESH_EVERY,
    BanditRegistry,
    ContextFeaturizer,
    LinUCB,
    PromptBandit,
    colour_families,
    parse_context,
    parse_placement,
)
from staging.generate.personalize import normalize_interests, personalize
from staging.generate.prompts import BUNDLED, library_path, load_library

runner = CliRunner()

# ------------------------------------------------------------------------------------ themes


@pytest.fixture(scope="module")
def library():
    return load_library()


def _tokens(text: str) -> int:
    """A rough CLIP token count: words, numbers and punctuation marks."""
    return len(re.findall(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]", text))


def test_bundled_library_has_every_furniture_category(library):
    assert library.source == str(BUNDLED)
    for key in ("default", "chair", "sofa", "table", "lamp", "bed", "storage", "decor"):
        themes = library.themes(key)
        assert 2 <= len(themes) <= 10, key
        assert len({t.name for t in themes}) == len(themes)
        for theme in themes:
            prompt, negative = library.fill(key, theme.name)
            assert "{" not in prompt and prompt.startswith("a")
            assert "watermark" in negative  # the shared negative is always there
    assert {"beach", "minimalism", "christmas"} <= set(library.interests)


def test_bundled_prompts_fit_the_text_encoder_with_two_interests(library):
    """Scene + a two-interest fragment + style stays under CLIP's 77 tokens."""
    longest = max(library.interests, key=lambda k: _tokens(library.interests[k]))
    second = max((k for k in library.interests if k != longest), key=len)
    extra = personalize({longest: 0.6, second: 0.4}, library.interests).fragment
    for key, category in library.categories.items():
        for theme in category.themes:
            prompt, _ = library.fill(key, theme.name, "black-brown three-seat sofa", None, extra)
            assert _tokens(prompt) <= 72, (key, theme.name, _tokens(prompt))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Three-seat sofa", "sofa"),
        ("Chest of 4 drawers", "storage"),
        ("Table lamp", "lamp"),
        ("Coffee table", "table"),
        ("Swivel chair", "chair"),
        ("Quilt cover and 2 pillowcases", "bed"),
        ("TV bench", "storage"),
        ("plant_pot", "decor"),
        ("Armchairs", "chair"),
        ("couch", "sofa"),
        ("Door", "default"),
        (None, "default"),
    ],
)
def test_catalog_categories_resolve_through_aliases(library, name, expected):
    assert library.resolve(name) == expected


def test_unknown_category_falls_back_or_raises_when_strict(library):
    assert [t.name for t in library.themes("spaceship")] == library.categories["default"].names
    with pytest.raises(StagingError, match="Unknown product category 'spaceship'.*chair"):
        library.resolve("spaceship", strict=True)
    with pytest.raises(StagingError, match="no theme 'nope'"):
        library.theme("chair", "nope")


def test_fill_product_colour_article_and_negatives(library):
    prompt, negative = library.fill("Swivel chair", "dining_room", "armchair", "Oak")
    assert prompt.startswith("an oak armchair at a wooden dining table")
    assert prompt.endswith(library.style)
    assert negative.startswith(library.negative) and negative.endswith("food mess, crowded table")
    default_noun, _ = library.fill("storage", "entryway")
    assert default_noun.startswith("a storage unit in a bright hallway")
    studio, _ = library.fill("chair", "studio_minimal", extra="with a hint of sea view")
    assert "with a hint of sea view, clean professional furniture photography" in studio


GOOD = """
version: 1
negative: blurry
style: photo
categories:
  default:
    themes:
      - name: plain
        prompt: a {product} on a table
  chair:
    aliases: [stool]
    themes:
      - name: loft
        prompt: a {product} in a loft
        negative: clutter
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\ncategories: {chair: {themes: [{name: a, prompt: a chair}]}}",
            "categories: a 'default' category is required",
        ),
        (
            GOOD.replace("prompt: a {product} in a loft", "prompt: '{product} in a loft"),
            "not valid YAML at line 16, column 1",
        ),
        (
            GOOD.replace("prompt: a {product} in a loft", "prompt: {product} in a loft"),
            "not valid YAML at line 14, column 27: .*must be quoted",
        ),
        (
            GOOD.replace("prompt: a {product} in a loft", "prompt: {product}"),
            "categories.chair.themes.0.prompt: .*quote the prompt",
        ),
        (
            GOOD.replace("a {product} in a loft", "a {prodcut} in a loft"),
            r"categories\.chair\.themes\.0\.prompt: unknown placeholder \{prodcut\}",
        ),
        (
            GOOD.replace("negative: clutter", "negativ: clutter"),
            r"categories\.chair\.themes\.0\.negativ: Extra inputs are not permitted",
        ),
        (GOOD.replace("[stool]", "[default]"), "alias 'default' belongs to both"),
        (GOOD.replace("version: 1", "version: 2"), "version: Input should be 1"),
        (
            GOOD.replace("a {product} on a table", "a {product on a table"),
            "categories.default.themes.0.prompt",
        ),
        (GOOD.replace("  chair:", "  Chair Big:"), "must be lower-case"),
        ("categories:\n  default:\n    themes: []\n", "at least 1 item"),
        ("- just\n- a list\n", "must be a mapping"),
        ("version: 1\ncategories: {default: [unclosed\n", "not valid YAML at line 3"),
    ],
)
def test_invalid_yaml_is_a_clear_error(tmp_path, text, message):
    file = tmp_path / "prompts.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(StagingError, match=message) as info:
        load_library(file)
    assert str(file) in str(info.value)


def test_duplicate_theme_names_are_rejected(tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(GOOD.replace("name: loft", "name: plain"))
    load_library(file)  # the same name in two categories is fine
    file.write_text(
        GOOD.replace(
            "      - name: loft",
            "      - name: plain\n        prompt: a stool\n      - name: plain",
        )
    )
    with pytest.raises(StagingError, match="theme name 'plain' is used twice"):
        load_library(file)


def test_missing_file_and_file_precedence(tmp_path):
    with pytest.raises(StagingError, match="does not exist"):
        load_library(tmp_path / "nope.yaml")
    assert library_path(None, tmp_path) == BUNDLED
    (tmp_path / "prompts.yaml").write_text(GOOD)
    assert library_path(None, tmp_path) == tmp_path / "prompts.yaml"
    assert library_path(tmp_path / "x.yaml", tmp_path) == tmp_path / "x.yaml"


def test_engine_uses_the_users_file_and_sees_edits(tmp_path):
    engine = StagingEngine(state_dir=tmp_path)
    assert engine.prompt_library().source == str(BUNDLED)
    own = tmp_path / "prompts.yaml"
    own.write_text(GOOD)
    lib = engine.prompt_library()
    assert lib.category_names == ["default", "chair"] and engine.prompt_library() is lib
    own.write_text(GOOD.replace("in a loft", "in a barn"))
    import os

    os.utime(own, ns=(1, 2_000_000_000_000_000_000))  # a different mtime, whatever the clock
    assert "barn" in engine.prompt_library().fill("chair", "loft")[0]


# ---------------------------------------------------------------------------- personalisation


def test_interest_parsing_and_errors():
    assert normalize_interests("beach:3, Minimalism:1") == {"beach": 0.75, "minimalism": 0.25}
    assert normalize_interests(["art", "books"]) == {"art": 0.5, "books": 0.5}
    assert list(normalize_interests({"a": 1, "b": 3})) == ["b", "a"]  # heaviest first
    assert normalize_interests(None) == {} and normalize_interests({}) == {}
    for bad in ({"beach": -1}, {"beach": 0}, {"beach": float("nan")}, "beach:lots", 42):
        with pytest.raises(StagingError):
            normalize_interests(bad)


def test_deterministic_personalisation_follows_the_weights(library):
    vocab = library.interests
    a = personalize({"beach": 0.6, "minimalism": 0.4}, vocab)
    assert a == personalize({"minimalism": 2, "beach": 3}, vocab)  # same distribution
    assert a.primary == "beach" and not a.sampled
    assert a.fragment.startswith(vocab["beach"])
    assert "with elements of a minimalist uncluttered space" in a.fragment
    flipped = personalize({"beach": 0.3, "minimalism": 0.7}, vocab)
    assert flipped.primary == "minimalism" and flipped.fragment.startswith(vocab["minimalism"])
    light = personalize({"beach": 0.95, "minimalism": 0.05}, vocab)  # under min_weight
    assert [n for n, _ in light.interests] == ["beach"]
    assert personalize({"sailing": 1}).fragment == "sailing themed decor"
    assert personalize(None).fragment == "" and not personalize({})


def test_sampled_personalisation_is_seeded_and_matches_the_distribution(library):
    dist = {"beach": 0.6, "minimalism": 0.4}
    one = personalize(dist, library.interests, seed=7)
    assert one == personalize(dist, library.interests, seed=7) and one.sampled
    leads = [personalize(dist, seed=s, top_k=1).primary for s in range(2000)]
    share = leads.count("beach") / len(leads)
    assert abs(share - 0.6) < 0.04, share
    assert {p for p in leads} == {"beach", "minimalism"}


# ---------------------------------------------------------------------------- context features


def test_context_parsing_and_errors():
    ctx = parse_context({"color": "Black-brown", "placement": "4:5"}, interests="art:1")
    assert ctx.colour == "Black-brown" and ctx.placement == (1080, 1350)
    assert ctx.interests == {"art": 1.0}
    assert parse_context(None) == parse_context({})
    assert parse_placement("300x250") == (300, 250) and parse_placement((728, 90)) == (728, 90)
    assert parse_placement("story") == (1080, 1920)
    bad = [
        ({"age": 30}, "age: unknown field"),
        ({"placement": "huge"}, "placement"),
        ({"placement": "0x100"}, "placement"),
        ({"interests": {"beach": -2}}, "interests"),
        ({"gender": 3}, "gender"),
        ("female", "mapping"),
    ]
    for context, message in bad:
        with pytest.raises(StagingError, match=message):
            parse_context(context)


def test_the_bandit_reads_placements_from_the_table_that_serves_them():
    """One table: a name means the size that is served ("landscape" was 1200x628 here and
    1920x1080 in compose.placement, so the bandit learned on another aspect)."""
    from staging.compose.placement import ALIASES, PLACEMENTS, RATIOS, get_placement

    for name in [*PLACEMENTS, *ALIASES, *RATIOS, "3:2", "300x250"]:
        assert parse_context({"placement": name}).placement == get_placement(name).size, name
    assert parse_context({"placement": "landscape"}).placement == (1920, 1080)


def test_features_are_stable_and_meaningful():
    """The hashed positions are part of every saved bandit: they must never change."""
    f = ContextFeaturizer()
    assert f.dim == len(f.names()) == 48
    x = f(
        {
            "color": "Black-brown",
            "gender": "F",
            "location": "Berlin",
            "interests": "beach:0.6,minimalism:0.4",
            "category": "Swivel chair",
            "placement": "4:5",
        }
    )
    assert np.flatnonzero(x).tolist() == [0, 1, 8, 16, 20, 29, 31, 35, 43, 46, 47]
    np.testing.assert_allclose(x[[16, 20, 31, 35]], [0.6, 0.4, 0.5, 0.5])
    assert np.flatnonzero(f(None)).tolist() == [0]  # unknown context: bias only
    assert colour_families("White, black") == {"white": 0.5, "black": 0.5}
    assert colour_families("Zebra") == {"other": 1.0}


# ------------------------------------------------------------------------------------ LinUCB


def test_sherman_morrison_inverse_stays_exact():
    rng = np.random.default_rng(0)
    model = LinUCB(2, 6, alpha=0.5)
    for _ in range(REFRESH_EVERY + 37):
        model.update(0, rng.normal(size=6), float(rng.random() < 0.3))
    np.testing.assert_allclose(model.A_inv[0] @ model.A[0], np.eye(6), atol=1e-9)
    scores = model.scores(rng.normal(size=6))
    assert np.all(scores.width > 0) and scores.width[1] > scores.width[0]  # arm 1 never tried
    with pytest.raises(StagingError):
        model.update(0, np.ones(5), 1.0)
    with pytest.raises(StagingError):
        model.update(0, np.ones(6), float("nan"))
    with pytest.raises(StagingError):
        model.update(0, np.ones(6), "click")
    with pytest.raises(StagingError):
        model.update(5, np.ones(6), 1.0)


ARMS = ["loft", "garden", "studio"]
PLANTED = {  # click probability by (gender, arm): studio is best for women, loft for men
    "female": {"loft": 0.05, "garden": 0.15, "studio": 0.45},
    "male": {"loft": 0.40, "garden": 0.10, "studio": 0.08},
}


def _play(bandit: PromptBandit | None, rounds: int, seed: int):
    """Simulate ``rounds`` requests; returns (regret per round, chosen arms, genders)."""
    rng = np.random.default_rng(seed)
    regret, chosen, genders = [], [], []
    for _ in range(rounds):
        gender = "female" if rng.random() < 0.5 else "male"
        ctx = {"gender": gender, "placement": "1080x1080"}
        arm = bandit.choose(ctx).name if bandit else ARMS[int(rng.integers(3))]
        p = PLANTED[gender]
        click = float(rng.random() < p[arm])
        if bandit:
            bandit.update(arm, ctx, click)
        regret.append(max(p.values()) - p[arm])
        chosen.append(arm)
        genders.append(gender)
    return np.array(regret), chosen, genders


def test_linucb_learns_the_planted_best_prompt_per_context():
    bandit = PromptBandit(ARMS, "chair")
    regret, chosen, genders = _play(bandit, 800, seed=1)
    random_regret, _, _ = _play(None, 800, seed=1)
    assert regret.sum() < 0.3 * random_regret.sum(), (regret.sum(), random_regret.sum())
    last = list(zip(chosen[-200:], genders[-200:], strict=True))
    women = [a for a, g in last if g == "female"]
    men = [a for a, g in last if g == "male"]
    assert women.count("studio") / len(women) > 0.9
    assert men.count("loft") / len(men) > 0.9
    choice = bandit.choose({"gender": "female", "placement": "1080x1080"})
    assert choice.name == "studio" and abs(choice.means["studio"] - 0.45) < 0.1
    assert choice.scores["studio"] >= choice.means["studio"]


def test_persistence_round_trip_gives_identical_choices(tmp_path):
    rng = np.random.default_rng(3)
    bandit = PromptBandit(ARMS, "chair", alpha=0.7)

    def context(i):
        return {
            "gender": ["female", "male", None][i % 3],
            "location": ["Berlin", "Lyon", "Austin"][int(rng.integers(3))],
            "interests": {"beach": float(rng.random()) + 0.01, "art": 0.5},
            "colour": ["White", "Oak", None][i % 3],
            "placement": ["300x250", "4:5", "story"][int(rng.integers(3))],
        }

    for i in range(300):
        ctx = context(i)
        bandit.update(bandit.choose(ctx).name, ctx, float(rng.random() < 0.2))
    path = bandit.save(tmp_path / "chair.json")
    assert [p.name for p in tmp_path.iterdir()] == ["chair.json"]  # no temporary files left
    data = json.loads(path.read_text())
    assert data["updates"] == 300 and [a["name"] for a in data["arms"]] == ARMS
    loaded = PromptBandit.load(path)
    assert loaded.alpha == 0.7 and loaded.names == ARMS
    for i in range(200):
        ctx = context(i)
        a, b = bandit.choose(ctx), loaded.choose(ctx)
        assert a == b  # same arm and bit-identical scores
        reward = float(rng.random() < 0.2)
        bandit.update(a.name, ctx, reward)
        loaded.update(b.name, ctx, reward)
    np.testing.assert_array_equal(bandit.model.A_inv, loaded.model.A_inv)


def test_damaged_or_foreign_state_is_a_clear_error(tmp_path):
    bad = tmp_path / "chair.json"
    bad.write_text("{not json")
    with pytest.raises(StagingError, match="delete it"):
        PromptBandit.load(bad)
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(StagingError, match="Delete it"):
        PromptBandit.load(bad)
    state = PromptBandit(ARMS).to_dict()
    state["arms"][0]["A"] = [[1.0]]
    bad.write_text(json.dumps(state))
    with pytest.raises(StagingError, match="Damaged"):
        PromptBandit.load(bad)


def test_bandit_is_thread_safe(tmp_path):
    bandit = PromptBandit(ARMS, "chair")
    featurizer = ContextFeaturizer()
    contexts = [
        {"gender": g, "location": loc, "placement": pl}
        for g in ("female", "male", None)
        for loc in ("Berlin", "Austin")
        for pl in ("300x250", "4:5")
    ]
    errors: list[BaseException] = []
    log: list[tuple[str, int]] = []
    log_lock = threading.Lock()

    def worker(k: int) -> None:
        try:
            for i in range(150):
                idx = (k * 7 + i) % len(contexts)
                arm = bandit.choose(contexts[idx]).name
                bandit.update(arm, contexts[idx], float((i + k) % 3 == 0))
                with log_lock:
                    log.append((arm, idx))
                if i % 50 == 0:
                    bandit.save(tmp_path / "chair.json")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert bandit.updates == 8 * 150 == len(log)
    # A = I + sum of x x^T of exactly the logged updates: none lost or doubled
    for a, name in enumerate(ARMS):
        xs = [featurizer(contexts[idx]) for arm, idx in log if arm == name]
        expected = np.eye(featurizer.dim) + sum((np.outer(x, x) for x in xs), np.zeros((48, 48)))
        np.testing.assert_allclose(bandit.model.A[a], expected, atol=1e-9)
        np.testing.assert_allclose(bandit.model.A_inv[a] @ expected, np.eye(48), atol=1e-6)
    assert PromptBandit.load(tmp_path / "chair.json").updates <= 8 * 150


def test_engine_suggests_records_and_persists(tmp_path):
    engine = StagingEngine(state_dir=tmp_path)
    ctx = {"gender": "female", "colour": "Oak", "placement": "4:5", "category": "Armchair"}
    s = engine.suggest_prompt("Armchair", ctx, interests={"beach": 0.6, "minimalism": 0.4})
    assert s.category == "chair" and s.theme in s.scores and s.arm == 0  # untrained: tie -> 0
    assert s.prompt.startswith("an oak armchair ") and "breezy coastal interior" in s.prompt
    assert set(s.scores) == set(engine.prompt_library().categories["chair"].names)
    assert s.context.interests == {"beach": 0.6, "minimalism": 0.4}
    for _ in range(20):  # the second theme gets clicks, the first does not
        engine.record_feedback("Armchair", "reading_nook", s.context, 1.0)
        engine.record_feedback("chair", 0, s.context, 0.0)
    state = tmp_path / "bandits" / "chair.json"
    assert state.is_file() and json.loads(state.read_text())["updates"] == 40
    s2 = engine.suggest_prompt("Armchair", s.context)
    assert s2.theme == "reading_nook" and s2.means["reading_nook"] > 0.8
    fresh = StagingEngine(state_dir=tmp_path).suggest_prompt("Armchair", s.context)
    assert fresh.scores == s2.scores and fresh.updates == 40
    other = engine.suggest_prompt("Spaceship", {"gender": "male"})
    assert other.category == "default" and other.prompt.startswith("a spaceship ")
    with pytest.raises(StagingError, match="no theme"):
        engine.record_feedback("chair", "moon_base", s.context, 1.0)
    with pytest.raises(StagingError, match="unknown field"):
        engine.suggest_prompt("chair", {"favourite_colour": "red"})
    json.dumps(s.describe())  # JSON-ready


def test_new_themes_get_fresh_arms_and_keep_what_was_learned(tmp_path):
    registry = BanditRegistry(tmp_path)
    bandit = registry.bandit("chair", ["a", "b"])
    bandit.update("b", {"gender": "male"}, 1.0)
    registry.save("chair")
    again = BanditRegistry(tmp_path).bandit("chair", ["c", "b", "a"])
    assert again.names == ["a", "b", "c"] and again.model.pulls.tolist() == [0, 1, 0]
    choice = again.choose({"gender": "male"}, arms=["c", "a"])  # "b" was removed from the YAML
    assert set(choice.scores) == {"c", "a"} and choice.name in {"c", "a"}


# ------------------------------------------------------------------------------------ bench


def test_bench_bandit_linucb_beats_random_and_epsilon_greedy():
    report = bench_bandit(rounds=2000, repeats=1, seed=0)
    final = {p: curve[-1] for p, curve in report["regret"].items()}
    assert report["winner"] == "linucb"
    assert final["linucb"] < 0.5 * final["random"]
    assert final["linucb"] < final["epsilon-greedy"]
    assert report["last_share_best"]["linucb"] > report["last_share_best"]["random"] + 0.3
    assert report["checkpoints"][-1] == 2000
    assert all(np.all(np.diff(c) >= 0) for c in report["regret"].values())  # cumulative
    assert (
        bench_bandit(rounds=300, repeats=1, seed=0)["regret"]["random"]
        == bench_bandit(rounds=300, repeats=1, seed=0)["regret"]["random"]
    )


def test_cli_bench_bandit():
    result = runner.invoke(app, ["bench", "bandit", "--rounds", "400", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    assert "linucb" in result.output and "winner:" in result.output
    result = runner.invoke(app, ["bench", "bandit", "--rounds", "200", "--repeats", "1", "--json"])
    report = json.loads(result.output)
    assert set(report["regret"]) == {"linucb", "epsilon-greedy", "random", "best-fixed"}


def test_bundled_file_is_package_data():
    """The themes live inside the package (a wheel install has them: tests/test_wheel.py)."""
    repo = Path(__file__).resolve().parents[1]
    assert BUNDLED.resolve() == repo / "staging" / "assets" / "prompts.yaml"
    assert BUNDLED.is_file()
