#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine and run it (called by `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

# 1. system packages: Chromium for browser tests, PostgreSQL for the store tests, Node for the frontend
need=()
command -v chromium >/dev/null || need+=(chromium)
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v npm >/dev/null || need+=(nodejs npm)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
if ((${#need[@]})); then
  SUDO=""; [[ "$(id -u)" == "0" ]] || SUDO="sudo"
  echo "==> installing system packages: ${need[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

# 2. Python environment (CPU torch first, so pip never pulls a CUDA build by accident)
make -s install-dev VENV="$VENV" TORCH_SPEC="$TORCH_SPEC"

# 3. lint
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .

# 4. frontend: unit tests, then the committed bundle must match its sources
(cd frontend && npm ci --no-audit --no-fund && npm test && npm run build)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if [[ -n "$(git status --porcelain -- static)" ]]; then
    git --no-pager diff --stat -- static
    echo "static/ is stale: run 'cd frontend && npm run build' and commit the result" >&2
    exit 1
  fi
fi

# 5. PostgreSQL on loopback for the store tests
BERTSCOPE_TEST_POSTGRES_URL="$(bash scripts/start-postgres.sh)"
export BERTSCOPE_TEST_POSTGRES_URL
export HF_HUB_OFFLINE=1

# 6. the Python suite
"$VENV/bin/python" -m pytest "$@"

# 7. the docs site: broken links, anchors, snippets or images, or a setting without a description, fail it
NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict  # (no --quiet: it hides the warnings that --strict counts)
