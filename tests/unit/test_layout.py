"""The shape of the code, held: imports point down the way mail travels, and Chalice stays at the edges.

ingress → mime, storage, delivery's queue; mime knows no provider; storage
knows no ingress; nothing but the composition (app.py, wiring.py) imports an
ingress; each ingress stands alone. docs/design/architecture.md draws it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LIB = ROOT / "chalicelib"
# Modules that may import chalice: the ones that declare routes and event handlers, and their shared glue.
CHALICE_MODULES = {"routes.py", "consumer.py"}
CHALICE_GLUE = {LIB / "web.py"}
# The test harness composes the whole app, as app.py does (Chalice's test client, SendGrid's posts, the
# emulator's resources); tests import it, and nothing deployed does (held below).
HARNESS = "chalicelib.testing"


@pytest.fixture(scope="module", autouse=True)
def aws_env() -> str:
    """Shadow conftest's AWS emulator fixture: these tests read source files only."""
    return ""


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, absolute; ``from a import b`` counts as a and as a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


SOURCES = {_module(path): _imports(path) for path in sorted(LIB.rglob("*.py"))}


def _importers(prefix: str) -> dict[str, set[str]]:
    return {
        module: {name for name in imports if name == prefix or name.startswith(prefix + ".")}
        for module, imports in SOURCES.items()
    }


def _within(module: str, *areas: str) -> bool:
    return any(module == area or module.startswith(area + ".") for area in areas)


def test_the_layout_is_the_one_the_docs_draw() -> None:
    packages = {path.parent.relative_to(LIB).as_posix() for path in LIB.rglob("__init__.py")}
    assert packages == {
        ".", "api", "console", "delivery", "ingress", "ingress/mailgun", "ingress/postmark", "ingress/relay",
        "ingress/sendgrid", "ingress/ses", "mailboxes", "mime", "storage",
    }


def test_nothing_but_the_composition_imports_an_ingress() -> None:
    offenders = {
        module: names
        for module, names in _importers("chalicelib.ingress").items()
        if names and not _within(module, "chalicelib.ingress", "chalicelib.wiring", HARNESS)
    }
    assert offenders == {}


def test_nothing_in_the_package_imports_the_test_harness() -> None:
    assert {module for module, imports in SOURCES.items() if HARNESS in imports} == set()


def test_mime_knows_no_provider_and_nothing_above_it() -> None:
    allowed = ("chalicelib.mime", "chalicelib.model", "chalicelib.errors")
    offenders = {
        module: {name for name in imports if name.startswith("chalicelib") and not _within(name, *allowed)}
        for module, imports in SOURCES.items()
        if _within(module, "chalicelib.mime")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_storage_imports_no_ingress_delivery_api_or_mailbox() -> None:
    allowed = ("chalicelib.storage", "chalicelib.model", "chalicelib.errors")
    offenders = {
        module: {name for name in imports if name.startswith("chalicelib") and not _within(name, *allowed)}
        for module, imports in SOURCES.items()
        if _within(module, "chalicelib.storage")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


PROVIDERS = ("mailgun", "postmark", "relay", "sendgrid", "ses")


@pytest.mark.parametrize(
    ("one", "other"), [(one, other) for one in PROVIDERS for other in PROVIDERS if one != other]
)
def test_each_ingress_stands_alone(one: str, other: str) -> None:
    offenders = {
        module: names
        for module, names in _importers(f"chalicelib.ingress.{other}").items()
        if names and _within(module, f"chalicelib.ingress.{one}")
    }
    assert offenders == {}


def test_delivery_and_the_read_api_know_no_ingress_and_each_other_only_through_storage() -> None:
    offenders = {
        module: {name for name in imports if _within(name, "chalicelib.ingress", "chalicelib.api")}
        for module, imports in SOURCES.items()
        if _within(module, "chalicelib.delivery", "chalicelib.mailboxes")
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_chalice_is_imported_only_where_routes_and_event_handlers_are_declared() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for path in LIB.rglob("*.py")
        if any(_within(name, "chalice") for name in _imports(path))
        and path.name not in CHALICE_MODULES and path not in CHALICE_GLUE and _module(path) != HARNESS
    )
    assert offenders == []


def test_the_package_ships_nothing_of_the_tests_scripts_or_bench() -> None:
    offenders = {
        module: {name for name in imports if _within(name, "tests", "scripts", "bench")}
        for module, imports in SOURCES.items()
        if module != HARNESS
    }
    assert {module: names for module, names in offenders.items() if names} == {}
