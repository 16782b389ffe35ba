"""The UI calls only what the API documents: every path in the UI's one client module
(`src/lib/api.ts`, PATHS) is in the API's OpenAPI document, and no other UI source names an API
path. Optional paths (features other work adds) are looked up in /openapi.json at run time."""

from __future__ import annotations

import re

from ui_support import UI_DIR

from coelho_serving.app import create_app

API_TS = UI_DIR / "src" / "lib" / "api.ts"


def _block(source: str, name: str) -> str:
    match = re.search(rf"export const {name} = \{{(.*?)\n\}} as const;", source, re.S)
    assert match, f"{name} not found in api.ts"
    return match.group(1)


def ui_paths() -> dict[str, str]:
    """PATHS of api.ts: name -> path template."""
    return dict(re.findall(r"^\s*(\w+): '([^']+)'", _block(API_TS.read_text(), "PATHS"), re.M))


def optional_paths() -> list[str]:
    return re.findall(r"'(/[^']+)'", _block(API_TS.read_text(), "OPTIONAL_PATHS"))


def test_every_path_the_ui_calls_is_in_the_openapi_document() -> None:
    documented = set(create_app().openapi()["paths"]) | {"/openapi.json"}
    paths = ui_paths()
    assert len(paths) >= 20, paths
    for name, template in paths.items():
        if "{uc}" in template:
            for uc in ("tfd", "eta", "ecci"):
                concrete = template.replace("{uc}", uc)
                if name in ("report",) and uc != "tfd":
                    continue  # classification only: the UI calls it on tfd's page only
                if name in ("clusters", "clusterFeature") and uc != "ecci":
                    continue  # clustering only
                assert concrete in documented, f"{name}: {concrete} is not in /openapi.json"
        else:
            assert template in documented, f"{name}: {template} is not in /openapi.json"


def test_no_ui_source_names_an_api_path_outside_the_client() -> None:
    offenders = []
    for path in (UI_DIR / "src").rglob("*"):
        if path.suffix not in (".ts", ".svelte") or path == API_TS or "tests" in path.parts:
            continue
        if re.search(r"['\"`]/api/|openapi\.json", path.read_text()):
            offenders.append(str(path.relative_to(UI_DIR)))
    assert not offenders, f"API paths outside src/lib/api.ts: {offenders}"


def test_optional_paths_are_only_candidates() -> None:
    """The optional routes are the ones the leaderboard and comparison work will add."""
    optional = optional_paths()
    assert "/api/v1/incremental/{uc}/leaderboard" in optional
    assert any("comparison" in p for p in optional)
    assert not set(optional) & set(ui_paths().values())
