"""The notifier's Alembic migrations, applied by ``notifier init-db`` (``notifier.upgrade``)."""
