"""metering units beyond tokens: cache writes, images, audio, characters

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PRICES = ("price_cache_write_input", "price_image", "price_audio_second", "price_characters")
_UNITS = (
    ("cache_write_tokens", sa.Integer()),
    ("images", sa.Integer()),
    ("audio_ms", sa.BigInteger()),
    ("characters", sa.BigInteger()),
)


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a column's constraints in place; PostgreSQL ignores it.
    with op.batch_alter_table("model_versions") as batch:
        for name in _PRICES:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    # Versions made before cache writes had a price of their own were charged the input price.
    op.execute("UPDATE model_versions SET price_cache_write_input = price_input")
    with op.batch_alter_table("usage_records") as batch:
        for name, type_ in _UNITS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for name, _ in reversed(_UNITS):
            batch.drop_column(name)
    with op.batch_alter_table("model_versions") as batch:
        for name in reversed(_PRICES):
            batch.drop_column(name)
