"""trust: who submitted a campaign, the approved payload hash, global opt-out

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitter", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("followers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opted_out_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("followers", schema=None) as batch_op:
        batch_op.drop_column("opted_out_at")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_hash")
        batch_op.drop_column("submitter")
