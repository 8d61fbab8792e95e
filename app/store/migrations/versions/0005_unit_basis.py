"""Indexes and description runs name the units they count (``basis``): ``neurons`` (every existing row) or
``features:<dictionary id>``; an index is unique per revision, corpus and basis.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD_UNIQUE = "uq_neuron_indexes_revision_corpus"
_NEW_UNIQUE = "uq_neuron_indexes_revision_corpus_basis"


def _basis_column() -> sa.Column:
    return sa.Column("basis", sa.String(length=100), nullable=False, server_default="neurons")


def upgrade() -> None:
    with op.batch_alter_table("neuron_indexes", schema=None) as batch_op:
        batch_op.add_column(_basis_column())
        batch_op.drop_constraint(_OLD_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(_NEW_UNIQUE, ["model_revision", "corpus", "basis"])
    with op.batch_alter_table("neuron_description_sets", schema=None) as batch_op:
        batch_op.add_column(_basis_column())


def downgrade() -> None:
    op.execute("DELETE FROM neuron_indexes WHERE basis <> 'neurons'")
    with op.batch_alter_table("neuron_description_sets", schema=None) as batch_op:
        batch_op.drop_column("basis")
    with op.batch_alter_table("neuron_indexes", schema=None) as batch_op:
        batch_op.drop_constraint(_NEW_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(_OLD_UNIQUE, ["model_revision", "corpus"])
        batch_op.drop_column("basis")
