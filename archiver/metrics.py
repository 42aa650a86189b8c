"""Prometheus metrics, module-level so any part of the archiver can count into them."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter("archiver_records_archived", "Records written (inserted or updated)", ["source", "account"])
REQUESTS = Counter("archiver_requests", "Provider HTTP requests by outcome", ["source", "status"])
RETRIES = Counter("archiver_retries", "Provider requests retried", ["source"])
RATE_LIMITED = Counter("archiver_rate_limited", "429 answers received", ["source"])
RATE_LIMIT_WAIT = Counter("archiver_rate_limit_wait_seconds", "Seconds spent waiting for the rate limiter", ["source"])
UNPARSED = Counter("archiver_unparsed_records", "Records archived raw whose payload could not be normalized",
                   ["source", "account"])
PASSES = Counter("archiver_passes", "Archive passes by outcome", ["source", "account", "outcome"])
CHECKPOINT_LAG = Gauge("archiver_checkpoint_lag_seconds", "Now minus the checkpoint", ["source", "account"])
RETENTION_HEADROOM = Gauge(
    "archiver_retention_headroom_seconds", "Time until the oldest unarchived moment ages out",
    ["source", "account"]
)
GAPS = Gauge("archiver_gaps", "Gaps in the archive: recorded ones and coverage-ledger holes",
             ["source", "account"])
LAST_SUCCESS = Gauge("archiver_last_success_timestamp_seconds", "Unix time of the last successful pass",
                     ["source", "account"])
QUARANTINED = Counter("archiver_quarantined_records", "Served records that could not be read, kept in quarantine",
                      ["source", "account"])
OWNED = Gauge("archiver_account_owned", "1 while this process polls the account (scale-out leases)", ["source", "account"])
