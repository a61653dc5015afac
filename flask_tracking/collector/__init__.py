"""Collection over HTTP: /api/event, the tracker script, and helpers shared with add_visit."""
