#!/bin/sh
# enrich-site.sh — an event-mode stage (one process per event) that adds `data.site`,
# looked up by `data.equipment_id` in a CSV table (equipment_id,site).
#
#   stdin:  one event as JSON          stdout: the event with data.site set
#   env:    SITE_TABLE (default: sites.csv beside this script)
#   exit:   0 ok · 65 the event has no data.equipment_id (bad data: not retried)
#
# Try it by hand:
#   echo '{"id":"e1","type":"alert.triggered","data":{"equipment_id":"pump_0009"}}' | plugins/enrich-site.sh
set -eu
table="${SITE_TABLE:-$(dirname "$0")/sites.csv}"
event=$(cat)
equipment=$(printf '%s\n' "$event" | jq -r '.data.equipment_id // empty')
if [ -z "$equipment" ]; then
  echo "enrich-site: event has no data.equipment_id" >&2
  exit 65
fi
site=$(awk -F, -v id="$equipment" '$1 == id { print $2; exit }' "$table")
printf '%s\n' "$event" | jq -c --arg site "${site:-unknown}" '.data.site = $site'
