"""HTTP adapter: the JSON API and health check (aiohttp)."""
