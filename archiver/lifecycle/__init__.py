"""The archive's lifecycle: retention (``prune``), the right to be forgotten (``erase``,
with tombstones checked where records enter: ``admission``)."""
