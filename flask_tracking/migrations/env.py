"""Alembic environment: migrate the database of the Flask app that runs the command."""

from __future__ import annotations

from alembic import context
from flask import current_app

# The app configures logging itself; alembic.ini carries no logging sections on purpose, so
# running migrations never replaces the app's handlers.
db = current_app.extensions["migrate"].db
config = context.config
config.set_main_option(
    "sqlalchemy.url", db.engine.url.render_as_string(hide_password=False).replace("%", "%%")
)
options = current_app.extensions["migrate"].configure_args


def run_migrations_offline() -> None:
    """Emit the SQL of the migrations instead of running them (`db upgrade --sql`)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=db.metadata,
        literal_binds=True,
        **options,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the app's engine."""

    def skip_empty_autogenerate(_context: object, _revision: object, directives: list) -> None:  # type: ignore[type-arg]
        # `db migrate` with no model change should not write an empty revision file.
        script = directives[0]
        if getattr(config.cmd_opts, "autogenerate", False) and script.upgrade_ops.is_empty():
            directives[:] = []

    options.setdefault("process_revision_directives", skip_empty_autogenerate)
    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata, **options)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
