"""The test tiers: which tests need PostgreSQL or a process of their own (`slow_tier`),
read from their code and fixtures rather than listed, so that a new test lands in its
tier by itself; `./run test --fast` runs the others. tests/conftest.py applies it."""

from __future__ import annotations

import asyncio
import builtins
import dis
import inspect
import subprocess
import sys
import types
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
import pytest
from playwright.sync_api import sync_playwright

SLOW_TIER = "slow_tier"
# Leaving the test process: any subprocess (`onramp`, anvil, Node, npm, promtool), and
# Chromium through Playwright's driver; then PostgreSQL.
PROCESSES = (
    subprocess,
    asyncio.create_subprocess_exec,
    asyncio.create_subprocess_shell,
    sync_playwright,
)
POSTGRESQL = (psycopg.connect,)
# Whose code is read for those: the project's, not the libraries' it calls.
PROJECT = {"tests", "bench", "service"}
Code = tuple[types.CodeType, dict[str, Any]]


def slow_items(items: list[pytest.Item]) -> list[pytest.Function]:
    """An item is slow when it runs on a `postgresql` param, or when its function or a
    fixture of its closure refers to PROCESSES or POSTGRESQL, directly or through the
    project code it calls. PostgreSQL in a fixture parametrized over the databases is its
    `postgresql` param's alone (`database_url` asks for it only there)."""
    roots = {item: [*code_of_item(item)] for item in items if isinstance(item, pytest.Function)}
    project = ProjectCode(code for codes in roots.values() for code, _ in codes)
    processes, postgresql = project.reaching(PROCESSES), project.reaching(POSTGRESQL)
    return [
        item
        for item, codes in roots.items()
        if on_postgresql(item)
        or any(
            code in processes or (code in postgresql and not other_database)
            for (code, _), other_database in codes
        )
    ]


def on_postgresql(item: pytest.Function) -> bool:
    params = item.callspec.params.values() if hasattr(item, "callspec") else ()
    return any(isinstance(param, str) and param == "postgresql" for param in params)


def code_of_item(item: pytest.Function) -> Iterator[tuple[Code, bool]]:
    """The code of the test and of its fixtures, each with whether it is a fixture
    parametrized over the databases that this item runs on another than PostgreSQL."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    for code in code_of(item.function):
        yield code, False
    for name in item.fixturenames:
        for fixture in item._fixtureinfo.name2fixturedefs.get(name, ()):
            other = "postgresql" in (fixture.params or ()) and params.get(name) != "postgresql"
            for code in code_of(fixture.func):
                yield code, other


def code_of(value: object) -> Iterator[Code]:
    """The code of a project function, or of a project class's methods, with its globals."""
    if str(attribute(value, "__module__")).partition(".")[0] not in PROJECT:
        return
    if inspect.isclass(value):
        for member in vars(value).values():
            for function in (member, attribute(member, "__func__"), attribute(member, "fget")):
                if inspect.isfunction(function):
                    yield from code_of(function)
        return
    function = inspect.unwrap(value) if callable(value) else None
    if inspect.isfunction(function):
        yield function.__code__, function.__globals__


class ProjectCode:
    """The project code reachable from some roots, read once: what calls what, and what
    refers to one of PROCESSES or POSTGRESQL itself."""

    def __init__(self, roots: Iterable[Code]) -> None:
        self.callers: defaultdict[types.CodeType, set[types.CodeType]] = defaultdict(set)
        self.uses: defaultdict[types.CodeType, list[object]] = defaultdict(list)
        todo = list(dict(roots).items())
        read = {code for code, _ in todo}
        while todo:
            code, namespace = todo.pop()
            callees = [(c, namespace) for c in code.co_consts if isinstance(c, types.CodeType)]
            for value in referenced(code, namespace):
                if any(value is way for way in (*PROCESSES, *POSTGRESQL)):
                    self.uses[code].append(value)
                callees += code_of(value)
            for callee, callee_namespace in callees:
                self.callers[callee].add(code)
                if callee not in read:
                    read.add(callee)
                    todo.append((callee, callee_namespace))

    def reaching(self, ways: tuple[object, ...]) -> set[types.CodeType]:
        """The code that refers to one of `ways`, itself or through what it calls: marked
        backwards from the direct uses, so that a cycle of calls cannot hide one."""
        found = {code for code, used in self.uses.items() if any(way in used for way in ways)}
        marking = list(found)
        while marking:
            for caller in self.callers[marking.pop()] - found:
                found.add(caller)
                marking.append(caller)
        return found


def referenced(code: types.CodeType, namespace: dict[str, Any]) -> Iterator[object]:
    """Every global and import the code reads, and each attribute read off one (`a.b.c`)."""
    current: object = None
    imported: object = None
    for instruction in dis.get_instructions(code):
        name = instruction.argval
        match instruction.opname:
            case "LOAD_GLOBAL" | "LOAD_NAME":
                current = namespace.get(name, attribute(builtins, name))
            case "LOAD_ATTR" | "LOAD_METHOD" if current is not None:
                current = attribute(current, name)
            case "IMPORT_NAME":
                current = imported = sys.modules.get(name)
            case "IMPORT_FROM" if imported is not None:
                current = attribute(imported, name)
            case _:
                current = None
        if current is not None:
            yield current


def attribute(value: object, name: str) -> object:
    """`value.name`, or None: reading the code must not break collection, whatever a
    property or a module's `__getattr__` raises."""
    try:
        return getattr(value, name, None)
    except Exception:
        return None
