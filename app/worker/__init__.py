"""arq wiring only: WorkerSettings, the job context (one session per job), the outbox sweep."""
