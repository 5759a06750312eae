#!/bin/bash
# high-confidence.sh — a stream-mode stage: one long-lived process, one event per input line,
# exactly one answer line per event, in order, naming the event it answers. It drops
# predictions below a confidence threshold (answers {"answer_to": ID, "events": []}) and answers
# every other event with the event itself.
#
#   env:  MIN_CONFIDENCE_PERCENT (default 80)
#
# Pure bash, no process per event: the confidence is cut out of the line with parameter
# expansion (IMMUNE writes it as a plain decimal such as 0.87).
#
# Try it by hand (one answer per line):
#   printf '%s\n' '{"id":"a","type":"prediction.created","data":{"confidence":0.55}}' \
#                 '{"id":"b","type":"prediction.created","data":{"confidence":0.91}}' | plugins/high-confidence.sh
min=${MIN_CONFIDENCE_PERCENT:-80}
while IFS= read -r line; do
  if [[ $line == *'"type":"prediction.created"'* && $line == *'"confidence":'* ]]; then
    value=${line#*\"confidence\":}
    value=${value%%[,\}]*}
    whole=${value%%.*}
    fraction=${value#*.}
    [[ $value == *.* ]] || fraction=0
    fraction=${fraction}00
    percent=$(( 10#${whole:-0} * 100 + 10#${fraction:0:2} ))
    if (( percent < min )); then
      # IMMUNE writes "id" first; its value is what the answer names.
      id=${line#*\"id\":\"}
      id=${id%%\"*}
      printf '{"answer_to":"%s","events":[]}\n' "$id"
      continue
    fi
  fi
  printf '%s\n' "$line"
done
