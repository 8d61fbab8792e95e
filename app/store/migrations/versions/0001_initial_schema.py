"""The first schema: analyses, jobs, evaluations, heads, probe sets, neuron indexes and description runs.

Revision ID: 0001
Revises:
Create Date: 2026-12-05

Written out in full (no import of the table classes): a revision stays what it was when later revisions
change the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(length=32)
MODEL_NAME = sa.String(length=500)
REVISION = sa.String(length=64)
TIMESTAMP = sa.DateTime(timezone=True)


def _column(name: str, kind: sa.types.TypeEngine, nullable: bool = False, **options: object) -> sa.Column:
    return sa.Column(name, kind, nullable=nullable, **options)


def _key(name: str) -> sa.Column:
    """An integer part of a composite primary key (never auto-incremented)."""
    return sa.Column(name, sa.Integer(), autoincrement=False, nullable=False)


def _cascade(column: str, target: str) -> sa.ForeignKeyConstraint:
    """``column`` refers to ``target``; its rows go when the target row goes."""
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE")


def _index_of(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns), unique=unique)


def upgrade() -> None:
    _analyses_jobs_and_evaluations()
    _heads_and_probes()
    _neuron_indexes()
    _neuron_descriptions()


def _analyses_jobs_and_evaluations() -> None:
    op.create_table(
        "analyses",
        _column("id", ID),
        _column("cache_key", sa.String(length=64)),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("model_info", sa.JSON()),
        _column("method", sa.String(length=100)),
        _column("method_version", sa.Integer()),
        _column("params", sa.JSON()),
        _column("target", sa.JSON(), nullable=True),
        _column("text", sa.Text()),
        _column("text_pair", sa.Text(), nullable=True),
        _column("tokens", sa.JSON()),
        _column("encoding", sa.JSON()),
        _column("result", sa.LargeBinary()),
        _column("created_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("analyses", "cache_key", unique=True)
    _index_of("analyses", "model_revision")
    op.create_table(
        "evaluations",
        _column("id", ID),
        _column("kind", sa.String(length=50)),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("params", sa.JSON()),
        _column("summary", sa.JSON()),
        _column("job_id", ID, nullable=True),
        _column("created_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("evaluations", "kind")
    op.create_table(
        "jobs",
        _column("id", ID),
        _column("kind", sa.String(length=50)),
        _column("params", sa.JSON()),
        _column("status", sa.String(length=20)),
        _column("progress", sa.Float()),
        _column("message", sa.Text()),
        _column("result_id", ID, nullable=True),
        _column("created_at", TIMESTAMP),
        _column("updated_at", TIMESTAMP),
        _column("owner", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("jobs", "status")


def _heads_and_probes() -> None:
    op.create_table(
        "heads",
        _column("id", ID),
        _column("name", sa.String(length=200)),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("labels", sa.JSON()),
        _column("weights", sa.LargeBinary()),
        _column("metrics", sa.JSON()),
        _column("params", sa.JSON()),
        _column("created_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("heads", "model_revision")
    _index_of("heads", "name")
    op.create_table(
        "probes",
        _column("id", ID),
        _column("name", sa.String(length=200)),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("layers", sa.JSON()),
        _column("rank", sa.Integer()),
        _column("params", sa.JSON()),
        _column("metrics", sa.JSON()),
        _column("weights", sa.LargeBinary()),
        _column("created_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("probes", "model_revision")
    _index_of("probes", "name")


def _neuron_indexes() -> None:
    op.create_table(
        "neuron_indexes",
        _column("id", ID),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("corpus", sa.String(length=64)),
        _column("corpus_source", sa.Text()),
        _column("corpus_hash", sa.String(length=64)),
        _column("sentence_count", sa.Integer()),
        _column("k", sa.Integer()),
        _column("max_tokens", sa.Integer()),
        _column("num_layers", sa.Integer()),
        _column("num_units", sa.Integer()),
        _column("status", sa.String(length=20)),
        _column("sentences_done", sa.Integer()),
        _column("tokens", sa.BigInteger()),
        _column("params", sa.JSON()),
        _column("created_at", TIMESTAMP),
        _column("updated_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_revision", "corpus", name="uq_neuron_indexes_revision_corpus"),
    )
    _index_of("neuron_indexes", "model_revision")
    op.create_table(
        "neuron_index_sentences",
        _column("index_id", ID),
        _key("sentence_id"),
        _column("text", sa.Text()),
        _cascade("index_id", "neuron_indexes.id"),
        sa.PrimaryKeyConstraint("index_id", "sentence_id"),
    )
    op.create_table(
        "neuron_index_layers",
        _column("index_id", ID),
        _key("layer"),
        _column("data", sa.LargeBinary()),
        _cascade("index_id", "neuron_indexes.id"),
        sa.PrimaryKeyConstraint("index_id", "layer"),
    )
    op.create_table(
        "neuron_summaries",
        _column("index_id", ID),
        _key("layer"),
        _key("unit"),
        *(
            _column(name, sa.Float(), nullable=True)
            for name in ("mean", "std", "minimum", "maximum", "top_mean")
        ),
        _cascade("index_id", "neuron_indexes.id"),
        sa.PrimaryKeyConstraint("index_id", "layer", "unit"),
    )


def _neuron_descriptions() -> None:
    op.create_table(
        "neuron_description_sets",
        _column("id", ID),
        _column("model_name", MODEL_NAME),
        _column("model_revision", REVISION),
        _column("corpora", sa.JSON()),
        _column("descriptor_set", sa.JSON()),
        _column("summary", sa.JSON()),
        _column("params", sa.JSON()),
        _column("created_at", TIMESTAMP),
        sa.PrimaryKeyConstraint("id"),
    )
    _index_of("neuron_description_sets", "model_revision")
    op.create_table(
        "neuron_descriptions",
        _column("set_id", ID),
        _key("layer"),
        _key("unit"),
        _column("label", sa.String(length=20)),
        _column("consistency", sa.Float(), nullable=True),
        _column("best_score", sa.Float(), nullable=True),
        _column("best_descriptor", sa.String(length=200), nullable=True),
        _column("detail", sa.JSON()),
        _cascade("set_id", "neuron_description_sets.id"),
        sa.PrimaryKeyConstraint("set_id", "layer", "unit"),
    )
    op.create_table(
        "neuron_descriptor_scores",
        _column("set_id", ID),
        _key("layer"),
        _key("unit"),
        _column("descriptor", sa.String(length=200)),
        _column("score", sa.Float()),
        _column("corpus", sa.String(length=200)),
        _cascade("set_id", "neuron_description_sets.id"),
        sa.PrimaryKeyConstraint("set_id", "layer", "unit", "descriptor"),
    )
    op.create_index(
        "ix_neuron_descriptor_scores_set_descriptor", "neuron_descriptor_scores", ["set_id", "descriptor"]
    )


def downgrade() -> None:
    for table in (
        "neuron_descriptor_scores",
        "neuron_descriptions",
        "neuron_description_sets",
        "neuron_summaries",
        "neuron_index_layers",
        "neuron_index_sentences",
        "neuron_indexes",
        "probes",
        "heads",
        "jobs",
        "evaluations",
        "analyses",
    ):
        op.drop_table(table)  # its indexes go with it
