#!/bin/sh
# `make demo`: the ward simulator on its defaults (a scheduler on SQLite in a temporary folder,
# 12 simulated devices, a staged rollout to completion). Extra arguments go to `suture sim`,
# e.g. `tools/run-demo.sh --power-cuts 0.3 --network-faults 0.2`.
set -eu
cd "$(dirname "$0")/.."
exec .venv/bin/suture sim "$@"
