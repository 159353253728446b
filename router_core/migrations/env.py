"""Alembic environment of the routing store: always run on a connection given by the caller."""
from alembic import context

from router_core.tables import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata,
                  render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
