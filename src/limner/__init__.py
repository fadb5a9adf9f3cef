"""Limner: a gRPC image service for chat and roleplay backends.

Kept tiny on purpose: ``import limner.v1`` must not pull in server dependencies.

``limner.v1`` (the generated stubs) and ``limner.client`` come from the ``limner-client``
distribution (clients/python), where ``limner`` is a namespace package. This package is a
regular one, so it extends its ``__path__`` with every other ``limner`` directory on
``sys.path``: an editable install puts clients/python/src there; a regular install of both
distributions merges them into one site-packages/limner directory and this is a no-op.
The list is changed in place, so ``__spec__.submodule_search_locations`` (the same list)
names both directories too: import-linter reads it (scripts/check imports limner first).
"""

from pkgutil import extend_path

__path__[:] = extend_path(__path__, __name__)

__version__ = "0.1.0"
