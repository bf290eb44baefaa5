"""Creating and dropping the count-keeping triggers of migrations 0018, 0019 and 0020 (the
leading underscore keeps Django's migration loader away from this module). Frozen like a
migration: change it only together with a new migration that recreates the triggers."""

EVENTS = ("insert", "delete", "update")


def create(schema_editor, *, name: str, table: str, pg_events: dict, pg_body: str,
           pg_truncate: str, sqlite_events: dict) -> None:
    """PostgreSQL: a statement trigger per event (``pg_events``: event → (REFERENCING clause,
    new rows, old rows), formatted into ``pg_body``) and one on TRUNCATE; SQLite: a row
    trigger per event (``sqlite_events``: event → (event clause, WHEN condition or "", body))."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for event, (referencing, new, old) in pg_events.items():
                cursor.execute(
                    f"CREATE FUNCTION editorial_{name}_{event}() RETURNS trigger "
                    f"LANGUAGE plpgsql AS $$ BEGIN {pg_body.format(new=new, old=old)}; "
                    "RETURN NULL; END $$")
                cursor.execute(
                    f"CREATE TRIGGER {name}_{event} AFTER {event.upper()} ON {table} "
                    f"{referencing} FOR EACH STATEMENT EXECUTE FUNCTION "
                    f"editorial_{name}_{event}()")
            cursor.execute(
                f"CREATE FUNCTION editorial_{name}_truncate() RETURNS trigger "
                f"LANGUAGE plpgsql AS $$ BEGIN {pg_truncate}; RETURN NULL; END $$")
            cursor.execute(
                f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION editorial_{name}_truncate()")
        elif connection.vendor == "sqlite":
            for event, (clause, condition, body) in sqlite_events.items():
                cursor.execute(f"CREATE TRIGGER {name}_{event} AFTER {clause} ON {table} "
                               f"FOR EACH ROW {condition} BEGIN {body} END")
        else:
            raise NotImplementedError(f"No {name} triggers for {connection.vendor}.")


def drop(schema_editor, *, name: str, table: str) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for event in (*EVENTS, "truncate"):
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}_{event} ON {table}")
                cursor.execute(f"DROP FUNCTION IF EXISTS editorial_{name}_{event}()")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}_{event}")
