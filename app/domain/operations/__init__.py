"""Operations: the job queue as an operator sees it (queue view, retry, cancel, recent failures) and the
state the dashboards read at scrape time (queue, outbox, active tenants, tokens near expiry)."""
