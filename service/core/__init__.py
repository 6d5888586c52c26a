"""Shared by every room: validated settings and logging."""
