"""clusters: current node count (allocated slots, moved by the dispatcher for auto-scale)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing clusters start with no nodes: the dispatcher allocates their target at once
    with op.batch_alter_table("clusters") as batch:
        batch.add_column(
            sa.Column("current_node_count", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("clusters") as batch:
        batch.drop_column("current_node_count")
