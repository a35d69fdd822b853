"""Outbound campaigns: settings and state (schemas.py, http.py, store.py, models.py) and
their call lists (list_files.py reads the uploads; storing them comes next)."""
