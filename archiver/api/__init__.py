"""The read side: provider-compatible endpoints, a search API and a search page, served
from the archive with no retention limit (``archiver serve``, or ``run`` with ``[api]``)."""
