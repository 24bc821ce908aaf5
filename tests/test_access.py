"""The skins' shared rules (staging.access: server paths, index names, product ids) and the
favourites' reward rule for the theme bandit (staging.generate.bandit.favourites)."""

from __future__ import annotations

import pytest

from staging.access import (
    DEMO,
    PRODUCT_ID,
    AccessRefused,
    IndexFolders,
    catalog_roots,
    confined,
    in_inbox,
    resolved_inside,
)
from staging.errors import StagingError
from staging.generate.bandit.favourites import Lesson, favourite_lesson


def test_a_path_is_inside_only_once_dots_and_symlinks_are_resolved(tmp_path):
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir()
    private.mkdir()
    (shared / "link").symlink_to(private, target_is_directory=True)
    assert resolved_inside(shared / "a" / ".." / "b", [shared]) == (shared / "b").resolve()
    assert resolved_inside(shared / ".." / "private", [shared]) is None
    assert resolved_inside(shared / "link" / "x.png", [shared]) is None
    assert resolved_inside(private / "x.png", [shared, private]) == (private / "x.png").resolve()


def test_catalog_roots_come_from_the_environment_else_the_defaults(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert catalog_roots([a], environ={}) == [a.resolve()]
    assert catalog_roots([a], environ={"STAGING_CATALOG_ROOTS": f"{b}:"}) == [b.resolve()]
    with pytest.raises(AccessRefused) as info:
        confined(f" {tmp_path / 'c'} ", "catalog folder", [a])
    assert isinstance(info.value, StagingError)
    assert f"The catalog folder '{tmp_path / 'c'}' is outside the folders" in str(info.value)
    assert "STAGING_CATALOG_ROOTS" in str(info.value)


def test_index_names_the_demo_a_named_index_or_a_shared_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("STAGING_CATALOG_ROOTS", raising=False)
    demo_catalog = tmp_path / "demo-catalog"
    folders = IndexFolders(tmp_path / "cache", demo_catalog)
    assert folders.path("") == folders.path(DEMO) == tmp_path / "cache" / "demo-index"
    assert folders.path(" mine ") == tmp_path / "cache" / "indexes" / "mine"
    shared = tmp_path / "cache" / "elsewhere" / "index"
    assert folders.path(str(shared)) == shared.resolve()
    with pytest.raises(AccessRefused, match="index folder"):
        folders.path(str(tmp_path / "private"))
    assert folders.own("mine") == tmp_path / "cache" / "indexes" / "mine"
    for name in (DEMO, "", "../up", str(shared)):
        with pytest.raises(AccessRefused, match="cannot be written by the browser"):
            folders.own(name)
    assert folders.default_for(demo_catalog) == folders.demo_index
    photos = folders.default_for(tmp_path / "photos")
    assert photos.parent == folders.folder and photos.name.startswith("photos-")
    assert folders.default_for(tmp_path / "photos") == photos  # the same folder, the same name
    assert folders.names() == [DEMO]
    (folders.folder / "b").mkdir(parents=True)
    (folders.folder / "b" / "catalog.sqlite").touch()
    (folders.folder / "a-not-an-index").mkdir()
    assert folders.names() == [DEMO, "b"]


def test_the_services_ids_and_inbox(tmp_path):
    assert PRODUCT_ID.match("chair-01.v2") and PRODUCT_ID.match("a" * 100)
    for bad in ("../escape", ".hidden", "a/b", "a" * 101, ""):
        assert not PRODUCT_ID.match(bad)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert in_inbox(inbox, "shots/a.png") == (inbox / "shots" / "a.png").resolve()
    assert in_inbox(inbox, "../../etc/passwd") is None
    assert in_inbox(inbox, "/etc/passwd") is None


def _shown(mode="prompt", theme="bedside", width=300, height=250):
    source = {"theme": theme, "category": "lamp"}
    source["placement"] = {"name": "medium-rectangle", "width": width, "height": height}
    return {"mode": mode, "source": source}


def test_a_favourite_teaches_its_theme_in_its_placements_context():
    assert favourite_lesson(_shown(), True) == Lesson(
        "lamp", "bedside", {"placement": "300x250"}, 1.0
    )
    assert favourite_lesson(_shown(), False).reward == 0.0
    assert favourite_lesson(_shown(mode="vanilla"), True) is None
    assert favourite_lesson(_shown(theme=None), True) is None
