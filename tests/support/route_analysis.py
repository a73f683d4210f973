"""One analysis of each route per test worker, shared by every app it builds.

FastAPI works out what a route needs for every app that includes the route, on the app's first
request to it: what its endpoint asks for (its signature, each parameter's kind and pydantic
field, its dependencies, recursively), and a pydantic field for its response model and for the
model of each documented error response (a `TypeAdapter`, whose schema is generated anew each
time). The suite builds an app per test, so it repeated that work for the same module-level
endpoints and models thousands of times: most of the CPU of an ordinary test.

Both depend only on the endpoint, its path, its route-level dependencies and the models, never
on the app, so a worker keeps one of each and hands every app the same fields and a copy of the
endpoint's analysis. Endpoints and models made per app (closures, `<locals>` in their name) are
built afresh and not kept. A server process under test, and production, build them as FastAPI
always does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import fastapi.routing

_ANALYSE = "_build_dependant_with_parameterless_dependencies"
_RESPONSE_FIELD = "create_model_field"


@contextmanager
def analysed_once() -> Iterator[None]:
    """While inside, each module-level endpoint and response model is analysed once."""
    with ExitStack() as patches:
        patches.enter_context(_patched(_ANALYSE, _dependencies_once))
        patches.enter_context(_patched(_RESPONSE_FIELD, _response_fields_once))
        yield


@contextmanager
def _patched(name: str, once: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    original: Callable[..., Any] | None = getattr(fastapi.routing, name, None)
    assert original is not None, f"fastapi.routing.{name} is gone: update {__name__}"
    setattr(fastapi.routing, name, once(original))
    try:
        yield
    finally:
        setattr(fastapi.routing, name, original)


def _made_per_app(thing: object) -> bool:
    return "<locals>" in getattr(thing, "__qualname__", "<locals>")


def _dependencies_once(analyse: Callable[..., Any]) -> Callable[..., Any]:
    kept: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def analysed(*, path: str, call: Callable[..., Any], dependencies: Sequence[Any]) -> Any:
        if _made_per_app(call):
            return analyse(path=path, call=call, dependencies=dependencies)
        # The dependencies are kept with the answer, so their ids are never reused meanwhile.
        key = (path, call, *map(id, dependencies))
        if key not in kept:
            kept[key] = (analyse(path=path, call=call, dependencies=dependencies), dependencies)
        (dependant, body_params, embed_body_fields), _kept_alive = kept[key]
        return copy.copy(dependant), body_params, embed_body_fields

    return analysed


def _response_fields_once(create: Callable[..., Any]) -> Callable[..., Any]:
    """fastapi.routing calls it for response models only (name, type_ and mode): the fields are
    read, never changed, so every app can share one."""
    kept: dict[tuple[Any, ...], Any] = {}

    def created(*, name: str, type_: Any, mode: str = "validation", **rest: Any) -> Any:
        if rest or _made_per_app(type_):
            return create(name=name, type_=type_, mode=mode, **rest)
        key = (name, type_, mode)
        try:
            field = kept.get(key)
        except TypeError:  # an unhashable annotation: not kept
            return create(name=name, type_=type_, mode=mode)
        if field is None:
            field = kept[key] = create(name=name, type_=type_, mode=mode)
        return field

    return created
