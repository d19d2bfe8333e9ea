#!/bin/sh
# Backups of the Stock Tracker database: the `backup` compose profile runs this in the postgres image.
#
#   backup.sh daemon   dump at start, then every day at BACKUP_AT (UTC, HH:MM); prune after each dump
#   backup.sh once     one dump now, then prune (docker compose --profile backup run --rm backup once)
#   backup.sh check    exit 1 unless the newest dump is younger than BACKUP_MAX_AGE_HOURS (the healthcheck)
#   backup.sh prune    apply the retention only
#
# Connection: the libpq variables (PGHOST, PGUSER, PGDATABASE, PGPASSWORD, ...). Dumps are pg_dump's custom
# format (compressed; restore with pg_restore, docs/operations.md), named stock-tracker-<UTC time>.dump,
# written to a temporary name and renamed only after `pg_restore --list` has read them back, so a file with
# the final name is always a complete archive. Retention: dumps older than BACKUP_KEEP_DAYS are deleted, but
# the newest BACKUP_KEEP_MIN are always kept — a backup job that stopped working never deletes the last
# good dumps.
set -eu

BACKUP_DIR="${BACKUP_DIR:-/backups}"
BACKUP_AT="${BACKUP_AT:-02:30}"
BACKUP_KEEP_DAYS="${BACKUP_KEEP_DAYS:-14}"
BACKUP_KEEP_MIN="${BACKUP_KEEP_MIN:-3}"
BACKUP_MAX_AGE_HOURS="${BACKUP_MAX_AGE_HOURS:-26}"
BACKUP_ON_START="${BACKUP_ON_START:-true}"
PG_DUMP="${PG_DUMP:-pg_dump}"
PG_RESTORE="${PG_RESTORE:-pg_restore}"
PREFIX="stock-tracker-"

log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

case "$BACKUP_KEEP_DAYS$BACKUP_KEEP_MIN$BACKUP_MAX_AGE_HOURS" in
  *[!0-9]*) log "BACKUP_KEEP_DAYS, BACKUP_KEEP_MIN and BACKUP_MAX_AGE_HOURS must be whole numbers"; exit 2 ;;
esac
case "$BACKUP_AT" in
  [0-2][0-9]:[0-5][0-9]) ;;
  *) log "BACKUP_AT must be HH:MM (UTC), got '$BACKUP_AT'"; exit 2 ;;
esac

# Newest first (the UTC stamp in the name sorts by time).
dumps() { find "$BACKUP_DIR" -maxdepth 1 -type f -name "${PREFIX}*.dump" | sort -r; }

dump() {
  mkdir -p "$BACKUP_DIR"
  # A dump interrupted by a restart leaves its temporary file behind: it is never a backup.
  find "$BACKUP_DIR" -maxdepth 1 -type f -name ".${PREFIX}*.partial" -delete
  stamp="$(date -u +%Y%m%dT%H%M%SZ)"
  final="$BACKUP_DIR/${PREFIX}${stamp}.dump"
  partial="$BACKUP_DIR/.${PREFIX}${stamp}.dump.partial"
  started="$(date +%s)"
  if ! "$PG_DUMP" --format=custom --no-password --file="$partial"; then
    rm -f "$partial"
    log "pg_dump failed; previous dumps are kept"
    return 1
  fi
  if ! "$PG_RESTORE" --list "$partial" >/dev/null; then
    rm -f "$partial"
    log "the new dump cannot be read back; previous dumps are kept"
    return 1
  fi
  mv "$partial" "$final"
  log "wrote $final ($(wc -c <"$final") bytes in $(($(date +%s) - started)) s)"
}

prune() {
  cutoff=$(($(date +%s) - BACKUP_KEEP_DAYS * 86400))
  n=0
  for f in $(dumps); do
    n=$((n + 1))
    [ "$n" -le "$BACKUP_KEEP_MIN" ] && continue
    if [ "$(date -r "$f" +%s)" -lt "$cutoff" ]; then
      rm -f "$f"
      log "removed $f (older than $BACKUP_KEEP_DAYS days)"
    fi
  done
}

check() {
  newest="$(dumps | head -n 1)"
  if [ -z "$newest" ]; then
    echo "no dump in $BACKUP_DIR"
    return 1
  fi
  age=$(($(date +%s) - $(date -r "$newest" +%s)))
  if [ "$age" -gt $((BACKUP_MAX_AGE_HOURS * 3600)) ]; then
    echo "newest dump $newest is $((age / 3600)) h old"
    return 1
  fi
  echo "newest dump $newest is $((age / 60)) min old"
}

seconds_until_next() {
  now="$(date -u +%s)"
  next="$(date -u -d "today $BACKUP_AT" +%s)"
  [ "$next" -le "$now" ] && next="$(date -u -d "tomorrow $BACKUP_AT" +%s)"
  echo $((next - now))
}

case "${1:-daemon}" in
  once) dump && prune ;;
  prune) prune ;;
  check) check ;;
  daemon)
    log "dumping ${PGDATABASE:-the database} daily at $BACKUP_AT UTC into $BACKUP_DIR, keeping $BACKUP_KEEP_DAYS days (at least $BACKUP_KEEP_MIN dumps)"
    if [ "$BACKUP_ON_START" = "true" ]; then
      if dump; then prune; fi
    fi
    while :; do
      wait_s="$(seconds_until_next)"
      log "next dump in $wait_s s"
      sleep "$wait_s"
      # A failed dump is logged and retried tomorrow; the healthcheck turns the container unhealthy.
      if dump; then prune; fi
    done
    ;;
  *) echo "usage: $0 [daemon|once|check|prune]" >&2; exit 2 ;;
esac
