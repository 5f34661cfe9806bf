"""Measurements behind `snl bench`: each returns plain dicts (rendered by `snl_cli.cli.bench`)."""
