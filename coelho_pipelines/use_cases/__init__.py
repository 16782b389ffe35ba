"""The use cases: every package here that exports `SPEC` is one (a new use case is a new package:
`spec`, `vocabulary`, `generator`). Shared by all: `spec` (the shape of a use case),
`model_factories`, `generation` (generator machinery) and `geography`."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import cache
from types import ModuleType

from coelho_pipelines.use_cases.spec import UseCaseSpec


@cache
def all_specs() -> tuple[UseCaseSpec, ...]:
    """Every use case spec, in package name order."""
    return specs_in(sys.modules[__name__])


def specs_in(package: ModuleType) -> tuple[UseCaseSpec, ...]:
    """The `SPEC` of every subpackage of `package` that exports one, in name order (modules
    that are not packages, like `spec` or `geography`, are shared code, never use cases)."""
    specs = []
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if not module_info.ispkg:
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, UseCaseSpec):
            specs.append(spec)
    return tuple(specs)


def use_case_keys() -> list[str]:
    return [spec.key for spec in all_specs()]


def get_spec(key: str) -> UseCaseSpec:
    """The spec of one use case, or a ValueError listing the valid keys."""
    for spec in all_specs():
        if spec.key == key:
            return spec
    raise ValueError(f"unknown use case {key!r}; valid: {', '.join(use_case_keys())}")
