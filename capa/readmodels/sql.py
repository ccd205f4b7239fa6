"""The SQL adapter of the read tables now lives in capa.adapters.sql; this name still imports."""

from capa.adapters.sql import Cursor, Sql

__all__ = ["Cursor", "Sql"]
