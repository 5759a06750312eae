#!/bin/sh
# notify.sh — an event-mode stage with `output: ignore`: a side effect only. It appends a
# human-readable line to NOTIFY_FILE, standing in for a chat or pager call; the event goes on
# unchanged whatever this prints.
#
#   env:  NOTIFY_FILE (default notifications.log in the working directory, the pipeline's folder)
#         NOTIFY_OUTAGE: when this file exists, the "pager" is down and the script exits 75
#         (EX_TEMPFAIL: try again), so Lymph retries it with backoff (`retries:`) and then
#         dead-letters the event; replaying the dead letters later sends the notification.
#
# Try it by hand:
#   echo '{"id":"e1","type":"alert.triggered","data":{"equipment_id":"pump_0009","metric":"pressure","value":9.1,"severity":"high"}}' \
#     | LYMPH_EVENT_ID=e1 NOTIFY_FILE=/dev/stdout plugins/notify.sh
set -eu
if [ -n "${NOTIFY_OUTAGE:-}" ] && [ -e "$NOTIFY_OUTAGE" ]; then
  echo "notify: pager service unavailable (outage flag $NOTIFY_OUTAGE present); try again later" >&2
  exit 75
fi
line=$(jq -r '"[\(.data.severity // "info")] \(.data.equipment_id // "?"): \(.data.metric // .type) = \(.data.value // "-") \(.data.unit // "") (threshold \(.data.threshold // "-"))"')
file=${NOTIFY_FILE:-notifications.log}
mkdir -p "$(dirname "$file")"
printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${LYMPH_EVENT_ID:-?}" "$line" >> "$file"
