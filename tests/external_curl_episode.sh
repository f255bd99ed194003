#!/usr/bin/env bash
# A simulator that is not Python: plays one 3-step episode against a policy server with
# curl and jq, and prints each action it received. Usage: external_curl_episode.sh ADDRESS TOKEN
set -euo pipefail
address=$1
token=$2
call() {  # call PATH JSON: POST JSON, print the answer, fail on a 4xx/5xx
  curl --silent --show-error --fail-with-body -H "Authorization: Bearer $token" \
    -H "Content-Type: application/json" -d "$2" "$address$1"
}
episode=$(call /episodes '{"training_enabled": true}' | jq -r .episode_id)
for step in 1 2 3; do
  action=$(call "/episodes/$episode/action" "{\"observation\": [$step, 0, 0, 0]}" | jq .action)
  echo "action $action"
  call "/episodes/$episode/returns" '{"reward": 1.0}' > /dev/null
done
call "/episodes/$episode/end" '{"observation": [4, 0, 0, 0]}' > /dev/null
echo "ended $episode"
