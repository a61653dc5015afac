"""The read path: pure query functions from (site, range) to plain data."""
