"""``parley.plugins.NAME`` as an importable module; entry points read without importlib.metadata.

The alias tests use the plugins installed in the workspace (openai, piper); the reader is
compared with `importlib.metadata` on the real environment and on folders made in ``tmp_path``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import parley.plugins
import pytest
from parley.plugins import ENTRY_POINT_GROUP, PluginImportError, plugin_manager
from parley.plugins.installed import distribution_of, entry_points


@pytest.fixture(autouse=True)
def _installed_plugins() -> Iterator[None]:
    with plugin_manager.isolated(entry_points(ENTRY_POINT_GROUP)):
        yield


# --- parley.plugins.NAME ------------------------------------------------------------------------


def test_from_plugin_module_import_names() -> None:
    import parley_openai.realtime
    from parley.plugins.openai import OpenAIRealtime, Realtime

    assert OpenAIRealtime is parley_openai.realtime.OpenAIRealtime
    assert Realtime is OpenAIRealtime


def test_every_import_form_gives_the_entry_module_itself() -> None:
    import parley.plugins.openai as aliased
    import parley.plugins.piper
    import parley_openai
    import parley_piper
    from parley.plugins import openai

    assert aliased is openai is parley_openai
    assert parley.plugins.piper is parley_piper
    assert sys.modules["parley.plugins.openai"] is parley_openai
    # The entry module keeps its own identity: relative imports and reloads still work.
    assert parley_openai.__name__ == "parley_openai"
    assert parley_openai.__spec__ is not None
    assert parley_openai.__spec__.name == "parley_openai"


def test_a_submodule_under_the_alias_is_the_real_submodule_not_a_copy() -> None:
    import parley_openai.realtime
    from parley.plugins.openai.realtime import OpenAIRealtime

    assert sys.modules["parley.plugins.openai.realtime"] is parley_openai.realtime
    assert OpenAIRealtime is parley_openai.realtime.OpenAIRealtime
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("parley.plugins.openai.no_such_module")


@pytest.mark.parametrize(
    "statement",
    [
        "import parley.plugins.nosuchplugin",
        "from parley.plugins.nosuchplugin import Thing",
        "from parley.plugins import nosuchplugin",
    ],
)
def test_a_plugin_that_is_not_installed_says_so_without_inventing_a_package(
    statement: str,
) -> None:
    with pytest.raises(PluginImportError) as info:
        exec(statement, {})
    assert isinstance(info.value, ImportError)
    assert str(info.value) == (
        "No Parley plugin named 'nosuchplugin' is installed; "
        "`parley plugins` lists the installed plugins"
    )
    assert "parley.plugins.nosuchplugin" not in sys.modules


def test_real_submodules_win_over_a_plugin_of_the_same_name() -> None:
    clash = EntryPoint(name="spec", value="parley_piper", group=ENTRY_POINT_GROUP)
    plugin_manager.reload([clash])
    import parley.plugins.spec

    assert parley.plugins.spec.__name__ == "parley.plugins.spec"
    assert hasattr(parley.plugins.spec, "parse_spec")


def test_aliases_follow_the_current_plugin_manager() -> None:
    import parley.plugins.openai
    import parley_openai
    import parley_piper

    assert parley.plugins.openai is parley_openai
    renamed = EntryPoint(name="openai", value="parley_piper", group=ENTRY_POINT_GROUP)
    with plugin_manager.isolated([renamed]):
        import parley.plugins.openai as inside

        assert inside is parley_piper
    import parley.plugins.openai as after

    assert after is parley_openai
    plugin_manager.reload([])
    with pytest.raises(PluginImportError, match="No Parley plugin named 'openai'"):
        import parley.plugins.openai


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_nothing_is_imported_until_a_plugin_module_is_named() -> None:
    out = _run(
        """
        import sys
        import parley.plugins

        print(sorted(m for m in sys.modules if m.startswith("parley_")))
        from parley.plugins.piper import PARLEY_API

        print("parley_piper" in sys.modules, PARLEY_API)
        """
    )
    assert out.splitlines() == ["[]", "True 1"]


def test_discovery_imports_neither_importlib_metadata_nor_importlib_abc() -> None:
    # They cost ~1.6 MB of RSS, which a bare AgentSession would pay in its first session.
    out = _run(
        """
        import sys
        from parley.plugins import list_plugins, plugin_manager

        plugin_manager()
        heavy = ["importlib.metadata", "importlib.abc", "email.parser"]
        print([m for m in heavy if m in sys.modules], len(list_plugins()) > 0)
        """
    )
    assert out == "[] True"


# --- reading entry points -----------------------------------------------------------------------


def _summary(eps: object) -> list[tuple[str, str, str | None, str | None]]:
    return [(ep.name, ep.value, *distribution_of(ep)) for ep in eps]  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", [ENTRY_POINT_GROUP, "console_scripts", "pytest11"])
def test_the_reader_finds_what_importlib_metadata_finds(group: str) -> None:
    expected = _summary(importlib.metadata.entry_points(group=group))
    assert _summary(entry_points(group)) == expected
    if group == ENTRY_POINT_GROUP:
        assert ("openai", "parley_openai", "parley-openai") in [e[:3] for e in expected]


def _dist(root: Path, folder: str, name: str, version: str, entry_points_txt: str) -> None:
    info = root / folder
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points_txt))


def test_the_reader_on_a_made_up_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    _dist(first, "Acme_Voice-1.0.dist-info", "acme-voice", "1.0", "[parley]\nacme = acme.plugin\n")
    _dist(
        first,
        "other-2.0.dist-info",
        "other",
        "2.0",
        """
        # a comment
        [console_scripts]
        other = other:main
        [parley]
        other = other_plugin:hooks [extra]
        """,
    )
    # The same distribution again, later on sys.path: shadowed, as importlib.metadata does.
    _dist(second, "acme.voice-0.9.dist-info", "acme-voice", "0.9", "[parley]\nold = acme.old\n")
    _dist(second, "egg_style.egg-info", "egg-style", "3", "[parley]\negg = egg_style\n")
    (second / "egg_style.egg-info" / "METADATA").rename(second / "egg_style.egg-info" / "PKG-INFO")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "absent"), str(second)])

    found = sorted(_summary(entry_points(ENTRY_POINT_GROUP)))
    assert found == [
        ("acme", "acme.plugin", "acme-voice", "1.0"),
        ("egg", "egg_style", "egg-style", "3"),
        ("other", "other_plugin:hooks [extra]", "other", "2.0"),
    ]
    importlib.invalidate_caches()
    expected = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert [(ep.name, ep.value) for ep in expected] == [
        (name, value) for name, value, *_ in _summary(entry_points(ENTRY_POINT_GROUP))
    ]


def test_a_zip_on_sys_path_is_read_through_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", "[parley]\nzipped = zipped_mod\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    importlib.invalidate_caches()
    assert _summary(entry_points(ENTRY_POINT_GROUP)) == [("zipped", "zipped_mod", "zipped", "1.0")]


def test_loading_an_entry_point_with_an_attribute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist(tmp_path, "x-1.dist-info", "x", "1", "[parley]\nspec = parley.plugins.spec:Spec\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    (entry_point,) = entry_points(ENTRY_POINT_GROUP)
    assert entry_point.load() is parley.plugins.Spec
