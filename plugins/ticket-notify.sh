#!/bin/sh
# ticket-notify.sh — tells a channel about each new maintenance ticket (an event-mode stage
# with `output: ignore`: a side effect only). It appends one line per `maintenance.scheduled`
# event to TICKET_CHANNEL, a file standing in for a chat webhook.
#
#   env:  TICKET_CHANNEL (required): where the line goes. Without it the script exits 78
#         (EX_CONFIG) and Lymph dead-letters the event; the ticket is already committed, so
#         the record resumes at this stage when replayed (`lymph replay PIPELINE`), and the
#         notification goes out once.
#
# Try it by hand:
#   echo '{"id":"e1","type":"maintenance.scheduled","data":{"ticket_id":"mt_1","equipment_id":"pump_0009","priority":"high","due_by":"2026-06-02T10:00:00Z"}}' \
#     | LYMPH_EVENT_ID=e1 TICKET_CHANNEL=/dev/stdout plugins/ticket-notify.sh
set -eu
if [ -z "${TICKET_CHANNEL:-}" ]; then
  echo "ticket-notify: TICKET_CHANNEL is not set (pass it with the stage's env:)" >&2
  exit 78
fi
line=$(jq -r '"\(.data.ticket_id) \(.data.equipment_id) \(.data.priority) due \(.data.due_by)"')
mkdir -p "$(dirname "$TICKET_CHANNEL")"
printf '%s %s\n' "${LYMPH_EVENT_ID:-?}" "$line" >> "$TICKET_CHANNEL"
