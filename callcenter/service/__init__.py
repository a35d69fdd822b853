"""Asyncio services that drive the core with what the adapters report."""
