"""Every table the application keeps, in one metadata: Alembic and the schema tests read it.

Each feature's rows live in their own module; importing this one imports them all.
"""

from __future__ import annotations

import callcenter.store.account_models  # noqa: F401  (users, roles, tokens, sessions)
from callcenter.store.models import Base

metadata = Base.metadata

__all__ = ["metadata"]
