"""Image recipes and the apt source lookup debootstrap builds from."""

from pathlib import Path

import pytest

from mec.edge import images


def test_recipes_are_the_papers_three_classes_and_a_python_base():
    assert set(images.RECIPES) == {"busybox", "debian", "httpd", "python"}
    assert images.RECIPES["httpd"].include == ("apache2",)
    # a language runtime for the user's own services (examples/mec-app: FROM mec/python)
    assert images.RECIPES["python"].include == ("python3",)
    assert images.RECIPES["python"].debootstrap is True
    assert images.RECIPES["busybox"].debootstrap is False


def test_recipe_hash_changes_with_suite_and_is_stable():
    r = images.RECIPES["debian"]
    assert r.recipe_hash("bookworm") == r.recipe_hash("bookworm")
    assert r.recipe_hash("bookworm") != r.recipe_hash("trixie")


def test_registry_ref():
    assert images.registry_ref("httpd", "10.0.3.1:5000") == "10.0.3.1:5000/mec/httpd:latest"


def test_apt_source_from_deb822(tmp_path: Path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n")
    assert images.apt_source(tmp_path) == ("http://mirror.example/debian", "bookworm")


def test_apt_source_from_one_line_format(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.example/ubuntu jammy main universe\n"
        "deb http://mirror.example/ubuntu jammy-updates main\n")
    assert images.apt_source(tmp_path) == ("http://mirror.example/ubuntu", "jammy")


def test_apt_source_missing_is_a_clear_error(tmp_path: Path):
    (tmp_path / "sources.list.d").mkdir()
    with pytest.raises(RuntimeError, match="no main distribution archive"):
        images.apt_source(tmp_path)


def test_unknown_image_name_is_rejected(monkeypatch):
    monkeypatch.setattr(images, "known_images", lambda store=None: {})
    with pytest.raises(ValueError, match="nginx is not published: built-in images are "
                       "busybox, debian, httpd, python; add your own with `mec image add"):
        images.ensure_images(["nginx"])
