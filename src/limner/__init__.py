"""Limner: a gRPC image service for chat and roleplay backends.

Kept tiny on purpose: ``import limner.v1`` must not pull in server dependencies.
"""

__version__ = "0.1.0"
