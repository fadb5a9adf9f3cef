"""Persistence: the tables, the database and the repositories on them.

- Tables: SQLModel classes in ``tables`` declare them; the Alembic revisions in
  ``migrations/versions`` create and change them (applied by ``Database.migrate`` at every
  start). SQLModel does nothing else: no sessions, and nothing instantiates the classes.
- Queries: every query on the tables is SQLAlchemy Core (``select``, ``insert``,
  ``update``, ``delete``) on the ``Table`` constants of ``tables``; the repositories turn
  the ``Row`` objects they get back into ``limner.domain`` types. List queries page
  through ``keyset``.
- Running them: a repository writes each transaction as a plain function over a Core
  ``Connection`` and awaits ``Database.run`` with it (``database``), so the event loop
  never blocks on the database. On SQLite the function runs on a thread of the
  database's own: writes on one writer thread that commits whatever is queued together,
  reads on a small pool of reader threads. On PostgreSQL there is no thread: the function
  runs through the asyncpg async engine's ``run_sync``, each statement awaiting asyncpg on
  the event loop. (``notify`` adds PostgreSQL's LISTEN/NOTIFY for job events, listening
  on an asyncpg connection of its own.)

The only package that imports SQLModel/SQLAlchemy. Everything else talks to it through
the store protocols of the layers above.
"""

from limner.persistence.database import Database

__all__ = ["Database"]
