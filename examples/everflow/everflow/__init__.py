"""everflow: daily affiliate conversion rollups, run as a Temporal pipeline."""
