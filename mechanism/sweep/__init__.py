"""Training sweeps of one Tail-Aware Loss setting (SPEC §6): the plan of runs, their folders
and shards (``plan``), training and evaluating them with resume (``run``), a sweep folder's
tables and the merge of shards (``tables``), and reading ``results.csv`` back with the summary
over seeds (``results``)."""
