"""Tests of `dwatch backfill`: the framework and each discovery method, against local servers."""
