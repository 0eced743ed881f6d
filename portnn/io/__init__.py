"""Files: checkpoints (one schema, bounded reading, atomic writes) and human-readable units for reports."""
