"""Files in and out, below every stage: atomic writes (``atomic``), SHA-256 of files
(``hashing``), the reproducibility manifest and package versions (``manifest``), the one
(de)serialiser of result dataclasses (``serialize``) and plain-text primitives — markdown
tables, p-values, percentages, CSV text (``text``)."""
