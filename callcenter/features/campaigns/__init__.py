"""Outbound campaigns: call lists (list_files.py reads the uploads).

The campaign service, store and HTTP face come in later sessions (issue 13).
"""
