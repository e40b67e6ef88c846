"""tokens: role, expiry and workspaces; browser sessions kept on the server; the audit log

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import openbai.store.models

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # tokens made before roles existed could do everything: they stay owners of every workspace
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="owner")
        )
        batch.add_column(sa.Column("expires_at", openbai.store.models.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("workspaces", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("created_at", openbai.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", openbai.store.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", openbai.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["api_tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("id_hash"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("time", openbai.store.models.UTCDateTime(), nullable=False),
        sa.Column("token_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entries_time", "audit_entries", ["time"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_time", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("web_sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("workspaces")
        batch.drop_column("expires_at")
        batch.drop_column("role")
