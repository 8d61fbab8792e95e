"""Sparse-autoencoder dictionaries: weights and metrics per model revision, layer and site; a row in training
holds its resumable checkpoint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dictionaries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("model_name", sa.String(length=500), nullable=False),
        sa.Column("model_revision", sa.String(length=64), nullable=False),
        sa.Column("layer", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("params_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=True),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_dictionaries_name"), "dictionaries", ["name"], unique=False)
    op.create_index(op.f("ix_dictionaries_model_revision"), "dictionaries", ["model_revision"], unique=False)
    op.create_index(op.f("ix_dictionaries_params_key"), "dictionaries", ["params_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_dictionaries_params_key"), table_name="dictionaries")
    op.drop_index(op.f("ix_dictionaries_model_revision"), table_name="dictionaries")
    op.drop_index(op.f("ix_dictionaries_name"), table_name="dictionaries")
    op.drop_table("dictionaries")
