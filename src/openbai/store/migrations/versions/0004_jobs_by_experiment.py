"""jobs: an index on (experiment_id, id), for the pages of an experiment's job list

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_jobs_experiment_id", "jobs", ["experiment_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_experiment_id", table_name="jobs")
