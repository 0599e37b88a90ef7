"""several workers: sessions.worker_id; one stored move per (session, seq)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A session names the worker process that runs it (so that another worker can tell when
    its runner died), and a move can be stored only once per session and sequence number."""
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("worker_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_sessions_worker_id"), ["worker_id"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_messages_session_seq", ["session_id", "seq"])


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_messages_session_seq", type_="unique")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_worker_id"))
        batch_op.drop_column("worker_id")
