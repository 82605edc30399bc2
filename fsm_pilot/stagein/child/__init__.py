"""Scripts the pilot runs as child processes by path (stdlib and the grid bindings only)."""
