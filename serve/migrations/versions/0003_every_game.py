"""sessions of every game: sessions.game_name, scenario and seats; valuations optional

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A session names its game (``price`` for every existing one), its scenario and every
    seat (policy and style per agent); the two valuations belong to the price game only."""
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("game_name", sa.String(length=32), nullable=False,
                                      server_default="price"))
        batch_op.add_column(sa.Column("scenario", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seats", sa.JSON(), nullable=True))
        batch_op.alter_column("supplier_valuation", existing_type=sa.Float(), nullable=True)
        batch_op.alter_column("retailer_valuation", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.alter_column("retailer_valuation", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("supplier_valuation", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("seats")
        batch_op.drop_column("scenario")
        batch_op.drop_column("game_name")
