"""The reference upload and sync backend (review §3, §4) on a real PostgreSQL."""
