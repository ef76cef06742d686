"""the control plane: users and admin tokens, key rotation, version lifecycle, audit log, generation

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 13:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def _version_columns() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("unpriced", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("price_schedule", sa.JSON(), nullable=True),
        sa.Column("context_window", sa.Integer(), nullable=True),
        sa.Column("capabilities", sa.JSON(), nullable=True),
        sa.Column("limits", sa.JSON(), nullable=True),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False, server_default="file"),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False, server_default="draft"),
        sa.Column("canary_share", sa.Integer(), nullable=True),
        sa.Column("activated_at", _UTC, nullable=True),
        sa.Column("deactivated_at", _UTC, nullable=True),
    )


# Refused by the database itself, whatever connects to it: the audit log is append-only.
_PG_GUARD = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
)
_SQLITE_GUARD = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
)


def upgrade() -> None:
    for table in ("organizations", "teams"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("description", sa.String(length=2000), nullable=True))
            batch.add_column(sa.Column("updated_at", _UTC, nullable=True))
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("disabled_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["organizations.id"], name=op.f("fk_users_org_id_organizations")),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_users_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "admin_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("expires_at", _UTC, nullable=True),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.Column("last_used_at", _UTC, nullable=True),
        sa.Column("created_at", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_admin_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_tokens")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_admin_tokens_secret_hash")),
    )
    op.create_index(op.f("ix_admin_tokens_user_id"), "admin_tokens", ["user_id"])
    op.create_index(op.f("ix_admin_tokens_prefix"), "admin_tokens", ["prefix"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("previous_secret_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("previous_expires_at", _UTC, nullable=True))
        batch.add_column(sa.Column("updated_at", _UTC, nullable=True))
        batch.create_foreign_key(op.f("fk_api_keys_user_id_users"), "users", ["user_id"], ["id"])
        batch.create_unique_constraint(op.f("uq_api_keys_previous_secret_hash"), ["previous_secret_hash"])
    with op.batch_alter_table("backends") as batch:
        batch.add_column(sa.Column("secret_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("secret_hint", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="file"))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=False, server_default="file"))
        batch.add_column(sa.Column("rollout", sa.String(length=16), nullable=False, server_default="auto"))
    with op.batch_alter_table("model_versions") as batch:
        for column in _version_columns():
            batch.add_column(column)
    # Until now the newest version of a model served it: that one is active, the others retired.
    op.execute(
        "UPDATE model_versions SET state = CASE WHEN number = "
        "(SELECT max(v.number) FROM model_versions v WHERE v.model_id = model_versions.model_id) "
        "THEN 'active' ELSE 'retired' END"
    )
    op.execute("UPDATE model_versions SET activated_at = created_at WHERE state = 'active'")
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("unpriced", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", _UTC, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("remote", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("object_name", sa.String(length=400), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_object", "audit_log", ["object_type", "object_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    for statement in _PG_GUARD if op.get_bind().dialect.name == "postgresql" else _SQLITE_GUARD:
        op.execute(statement)
    control = op.create_table(
        "control_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_state")),
    )
    op.bulk_insert(control, [{"id": 1, "generation": 0}])


def downgrade() -> None:
    op.drop_table("control_state")
    op.drop_table("audit_log")  # its triggers go with it
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_log_append_only()")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("unpriced")
    with op.batch_alter_table("model_versions") as batch:
        for column in reversed(_version_columns()):
            batch.drop_column(column.name)
    with op.batch_alter_table("models") as batch:
        batch.drop_column("rollout")
        batch.drop_column("source")
    with op.batch_alter_table("backends") as batch:
        for name in ("source", "secret_hint", "secret_encrypted"):
            batch.drop_column(name)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("uq_api_keys_previous_secret_hash"), type_="unique")
        batch.drop_constraint(op.f("fk_api_keys_user_id_users"), type_="foreignkey")
        for name in ("updated_at", "previous_expires_at", "previous_secret_hash", "user_id"):
            batch.drop_column(name)
    op.drop_table("admin_tokens")
    op.drop_table("users")
    for table in ("teams", "organizations"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("updated_at")
            batch.drop_column("description")
