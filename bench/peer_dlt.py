"""The peer: dlt's ``rest_api`` source into SQLite, merging on a content key, as a user
would point it at SendZen's ``/v1/logs`` today. Runs in its own virtualenv
(``make bench PEER=dlt`` makes it); ``bench/run.py`` starts it against the same fake and
the same 100,000 logs as the archiver, and prints both.

    .venv-dlt/bin/python bench/peer_dlt.py BASE_URL API_KEY DATABASE_FILE
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import dlt
from dlt.sources.rest_api import rest_api_source


def with_key(log: dict) -> dict:
    """SendZen logs have no id: the same content key the archiver derives (without its ticks prefix)."""
    log["content_key"] = hashlib.sha256(json.dumps(log, sort_keys=True).encode()).hexdigest()
    return log


def main(base_url: str, api_key: str, database: str) -> None:
    source = rest_api_source({
        "client": {
            "base_url": base_url,
            "auth": {"type": "bearer", "token": api_key},
            "paginator": {"type": "cursor", "cursor_path": "data.next_page_token", "cursor_param": "nextPageToken"},
        },
        "resource_defaults": {"write_disposition": "merge", "primary_key": "content_key"},
        "resources": [{
            "name": "logs",
            "endpoint": {"path": "v1/logs", "params": {"pageSize": 20}, "data_selector": "data.logs"},
            "processing_steps": [{"map": with_key}],
        }],
    })
    pipeline = dlt.pipeline("sendzen_logs", destination=dlt.destinations.sqlalchemy(f"sqlite:///{database}"),
                            dataset_name="main", pipelines_dir=database + ".pipelines")
    started = time.monotonic()
    pipeline.run(source)
    print(f"pipeline.run {time.monotonic() - started:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
