"""Imports of the pilot's libraries that a pilot never uses, kept out of its memory.

requests looks for a character-set detector (charset_normalizer, else chardet) at import, only to
guess the encoding of a reply that declares none, for ``Response.text``. The pilot decodes its
replies itself (JSON or form-encoded bytes); without a detector requests falls back to UTF-8.
charset_normalizer's compiled detector is 2.6 MiB of a pilot's RSS (measured: a bare python3
importing transitions, requests, psutil and structlog is 31.8 MiB with it, 29.2 MiB without).

Two more are imported by the libraries for code a pilot never runs, so they are *deferred*
(:func:`defer`): a stand-in is imported instead, and the real module is loaded the first time
anything reads an attribute of it.

- asyncio: structlog imports it (structlog.stdlib, structlog._native) for its ``a*`` log methods;
  the pilot has no event loop. With what it pulls in (concurrent.futures, ...): 1.5 MiB of RSS.
- importlib.metadata: urllib3 2.x imports its ``version`` (urllib3.http2) to check the h2
  package when HTTP/2 is switched on, which requests never does. With csv and its own parts: 0.4 MiB.
"""

from __future__ import annotations

import sys
import types
import warnings

TYPE_CHECKING = False  # typing is not imported for annotations alone
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from typing import Any

#: Modules a pilot never imports: ``import`` of them raises ImportError (None in sys.modules).
UNUSED = ("charset_normalizer", "chardet")
#: Modules imported by the pilot's libraries for code a pilot never runs, and the functions that
#: the libraries take from them at import (``from m import f``): loaded on first use.
DEFERRED: dict[str, tuple[str, ...]] = {"asyncio": (), "importlib.metadata": ("version",)}


def skip_unused() -> None:
    """Keep ``UNUSED`` and ``DEFERRED`` out of this process (call before structlog and requests are imported)."""
    for name, functions in DEFERRED.items():
        defer(name, functions)
    if "requests" in sys.modules:  # too late: requests looked for a detector when it was imported
        return
    for name in UNUSED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: "not importable", by design
    # requests says so at import; for the pilot it is the intended set-up, not a problem to report
    warnings.filterwarnings("ignore", message="Unable to find acceptable character detection dependency")


def defer(name: str, functions: tuple[str, ...] = ()) -> None:
    """Put a stand-in for module ``name`` in sys.modules (unless it is imported already).

    ``import name`` then binds the stand-in, which costs nothing. The first read of an attribute it
    lacks (``name.get_running_loop``, ``from name import x``, even ``name.__file__``) imports the
    real module, which replaces the stand-in (in sys.modules and on its parent package), and returns
    the real attribute; a module that bound the stand-in keeps reading through it. ``functions`` are
    names a library takes at import (``from name import f``): the stand-in has them as forwarders
    that load the real module when called. Importing a submodule first (``import name.sub``) loads
    the real package, then the submodule once (:class:`_RealParentFirst`).
    Python's own importlib.util.LazyLoader cannot do this: the next ``import name`` reads the
    module's ``__spec__``, which loads it.
    """
    if name in sys.modules:
        return
    from importlib.util import find_spec

    spec = find_spec(name)
    if spec is None:
        return
    stand_in = types.ModuleType(name, f"Stand-in for {name}, imported on first use (fsm_pilot.lean).")
    stand_in.__spec__ = spec
    if spec.submodule_search_locations is not None:
        stand_in.__path__ = spec.submodule_search_locations

    def load(attr: str) -> Any:
        if attr == "__path__":  # not a package (else it has one); ``from name import f`` asks: it is not loaded
            raise AttributeError(attr)
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        __import__(name)
        return getattr(sys.modules[name], attr)

    stand_in.__getattr__ = load  # type: ignore[method-assign]  # PEP 562: called for the attributes it lacks
    for function in functions:
        setattr(stand_in, function, _forwarder(load, function))
    _STAND_INS[name] = stand_in
    if _RealParentFirst not in sys.meta_path:
        sys.meta_path.insert(0, _RealParentFirst)
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)


#: The stand-ins made so far, by module name.
_STAND_INS: dict[str, types.ModuleType] = {}


class _RealParentFirst:
    """A meta path finder: importing a submodule of a stand-in (``import asyncio.events`` first) loads the
    real package first, since the submodule's own relative imports read the package's attributes."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        parent = name.rpartition(".")[0]
        stand_in = _STAND_INS.get(parent)
        if stand_in is None or sys.modules.get(parent) is not stand_in:
            return None
        stand_in.__getattr__("__name__")  # the real package, which may import this submodule itself
        existing = sys.modules.get(name)
        if existing is None:
            return None  # the usual finders find it, for the real package
        from importlib.machinery import ModuleSpec

        loader = _Existing(existing)  # a Loader by protocol: importlib.abc is not imported for it
        spec = ModuleSpec(name, loader, origin=getattr(existing.__spec__, "origin", None))  # type: ignore[arg-type]
        # importlib loads a module found meanwhile with *its* spec (a second execution): it is given this one
        existing.__spec__ = spec
        return spec


class _Existing:
    """The loader of a module already loaded meanwhile: gives it back as it is (no second execution)."""

    def __init__(self, module: types.ModuleType) -> None:
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        return self.module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the spec it was given


def _forwarder(load: Callable[[str], Any], function: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        return load(function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = function
    return call
