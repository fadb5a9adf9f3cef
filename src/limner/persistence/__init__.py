"""SQLModel persistence: tables, the async engine, migrations and repositories.

The only package that imports SQLModel/SQLAlchemy. Everything else talks to it through
the store protocols of the layers above.
"""

from limner.persistence.database import Database

__all__ = ["Database"]
