"""The shop's Alembic environment; ``include_name`` keeps the notifier's tables out."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine

from notifier.migrate import include_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shop_models import Base

engine = create_engine(os.environ["SHOP_DATABASE_URL"])
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=include_name,  # the notifier's tables are the notifier's business
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
